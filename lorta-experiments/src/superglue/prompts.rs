//! MeZO's prompt templates (princeton-nlp/MeZO `large_models/templates.py`, the facts in
//! REFERENCE.md), turning an example into a prompt and continuations.
//!
//! - COPA: the premise without its trailing ".", then " so " (question = effect) or " because "
//!   (cause); the candidates are the two choices with their first word lower-cased unless it is
//!   "I".
//! - ReCoRD: MeZO's code uses `ReCoRDTemplateGPT3` by default: prompt = the passage with every
//!   "@highlight\n" replaced by "- ", then "\n-"; each candidate continues it with " " + the query
//!   whose "@placeholder" is replaced by the entity. [`RecordTemplate::Question`] is the other
//!   MeZO template (REFERENCE.md): "{passage}\n{query}\nQuestion: what is the \"@placeholder\"\nAnswer:"
//!   and " {entity}".
//! - SQuAD: "Title: {title}\nContext: {context}\nQuestion: {question}\nAnswer:"; DROP: "Passage:
//!   {context}\nQuestion: {question}\nAnswer:"; the training continuation is " {first answer}\n";
//!   evaluation generates greedily and stops at the first newline.
use serde::{Deserialize, Serialize};

/// What the model has to produce after the prompt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Target {
    /// Pick the candidate continuation with the highest mean token log-likelihood; `correct`
    /// lists every correct candidate (ReCoRD can have several), the first one is trained on.
    Choice { candidates: Vec<String>, correct: Vec<usize> },
    /// Generate an answer; `golds` are the gold answers, each a list of spans (SQuAD: one span
    /// each; DROP: a number, a date or one or more spans). `train_continuation` is what training
    /// teaches (" {first answer}\n").
    Generate { golds: Vec<Vec<String>>, train_continuation: String },
}

/// One prompted example of any Table 3 task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LmExample {
    /// Id from the file (`idx`, question id, query id) for prediction dumps.
    pub id: String,
    pub prompt: String,
    pub target: Target,
}

impl LmExample {
    /// The continuation trained on (the first correct candidate or the first gold answer).
    pub fn train_continuation(&self) -> &str {
        match &self.target {
            Target::Choice { candidates, correct } => &candidates[correct[0]],
            Target::Generate { train_continuation, .. } => train_continuation,
        }
    }
}

/// COPA's question field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopaQuestion {
    Cause,
    Effect,
}

/// COPA prompt: premise (right-trimmed, one trailing "." removed) + " because " / " so ".
pub fn copa_prompt(premise: &str, question: CopaQuestion) -> String {
    let mut p = premise.trim_end();
    if let Some(s) = p.strip_suffix('.') {
        p = s;
    }
    let conj = match question {
        CopaQuestion::Effect => " so ",
        CopaQuestion::Cause => " because ",
    };
    format!("{p}{conj}")
}

/// COPA candidate: the first space-separated word lower-cased unless it is "I".
pub fn copa_candidate(choice: &str) -> String {
    let mut words: Vec<String> = choice.split(' ').map(str::to_string).collect();
    if let Some(first) = words.first_mut() {
        if first != "I" {
            *first = first.to_lowercase();
        }
    }
    words.join(" ")
}

/// ReCoRD template choice (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordTemplate {
    /// MeZO's default (`ReCoRDTemplateGPT3`).
    #[default]
    Gpt3,
    /// MeZO's `ReCoRDTemplate` ("Question: what is the \"@placeholder\"\nAnswer: {entity}").
    Question,
}

/// ReCoRD prompt and one continuation per entity.
pub fn record_prompt(template: RecordTemplate, passage: &str, query: &str, entities: &[String]) -> (String, Vec<String>) {
    match template {
        RecordTemplate::Gpt3 => {
            let p = passage.replace("@highlight\n", "- ");
            let cands = entities.iter().map(|e| format!(" {}", query.replace("@placeholder", e))).collect();
            (format!("{p}\n-"), cands)
        }
        RecordTemplate::Question => {
            let prompt = format!("{passage}\n{query}\nQuestion: what is the \"@placeholder\"\nAnswer:");
            (prompt, entities.iter().map(|e| format!(" {e}")).collect())
        }
    }
}

pub fn squad_prompt(title: &str, context: &str, question: &str) -> String {
    format!("Title: {title}\nContext: {context}\nQuestion: {}\nAnswer:", question.trim())
}

pub fn drop_prompt(passage: &str, question: &str) -> String {
    format!("Passage: {passage}\nQuestion: {}\nAnswer:", question.trim())
}

/// " {answer}\n": what generation tasks train on.
pub fn answer_continuation(answer: &str) -> String {
    format!(" {answer}\n")
}

/// The generated answer: text up to the first newline, trimmed (MeZO stops at "\n" and strips).
pub fn clean_generation(text: &str) -> String {
    text.split('\n').next().unwrap_or("").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copa_template() {
        assert_eq!(copa_prompt("The man turned on the faucet.", CopaQuestion::Effect), "The man turned on the faucet so ");
        assert_eq!(copa_prompt("My body cast a shadow over the grass. ", CopaQuestion::Cause), "My body cast a shadow over the grass because ");
        assert_eq!(copa_prompt("Why?", CopaQuestion::Cause), "Why? because ");
        assert_eq!(copa_candidate("The sun was rising."), "the sun was rising.");
        assert_eq!(copa_candidate("I found a weapon."), "I found a weapon.");
        assert_eq!(copa_candidate("It's Fine."), "it's Fine.");
    }

    #[test]
    fn record_and_qa_templates() {
        let ents = vec!["Paris".to_string(), "France".to_string()];
        let (p, c) = record_prompt(RecordTemplate::Gpt3, "Text here.\n@highlight\nA point", "@placeholder is big", &ents);
        assert_eq!(p, "Text here.\n- A point\n-");
        assert_eq!(c, vec![" Paris is big", " France is big"]);
        let (p, c) = record_prompt(RecordTemplate::Question, "P", "Q @placeholder", &ents);
        assert_eq!(p, "P\nQ @placeholder\nQuestion: what is the \"@placeholder\"\nAnswer:");
        assert_eq!(c[1], " France");
        assert_eq!(squad_prompt("T", "C", " Who? "), "Title: T\nContext: C\nQuestion: Who?\nAnswer:");
        assert_eq!(drop_prompt("C", "How many?"), "Passage: C\nQuestion: How many?\nAnswer:");
        assert_eq!(answer_continuation("42"), " 42\n");
        assert_eq!(clean_generation(" Denver Broncos\nQuestion: x"), "Denver Broncos");
        assert_eq!(clean_generation(""), "");
    }
}
