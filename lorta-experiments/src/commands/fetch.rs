//! `fetch glue --tasks rte,mrpc`: download GLUE tasks into the cache `train` and the tables read.
use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::glue::{self, GlueTask};

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// What to fetch (only `glue`).
    pub what: String,
    /// Comma list of tasks (cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli) or `all`.
    #[arg(long, value_delimiter = ',', required = true)]
    pub tasks: Vec<String>,
    /// Target folder (default: $LORTA_CACHE/glue or ~/.cache/lorta/glue).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Base URL of the task archives.
    #[arg(long, default_value = glue::GLUE_BASE_URL)]
    pub base_url: String,
}

pub fn run(a: Args) -> Result<()> {
    if a.what != "glue" {
        bail!("fetch: unknown target `{}` (only `glue` can be fetched)", a.what);
    }
    let tasks: Vec<GlueTask> = if a.tasks.iter().any(|t| t == "all") {
        GlueTask::ALL.to_vec()
    } else {
        a.tasks.iter().map(|t| t.parse::<GlueTask>()).collect::<std::result::Result<_, _>>()?
    };
    let dir = a.dir.unwrap_or_else(glue::default_cache_dir);
    let dirs = glue::fetch_glue(&tasks, &dir, &a.base_url, true)?;
    for d in dirs {
        println!("{}", d.display());
    }
    println!("GLUE data in {} (use it with --glue-dir {} or leave --glue-dir out)", dir.display(), dir.display());
    Ok(())
}
