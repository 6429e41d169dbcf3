//! Downloading the official GLUE archives into a local cache.
//!
//! Sources (the ones GLUE's `download_glue_data.py` uses since the data moved
//! to `dl.fbaipublicfiles.com`):
//!
//! | task  | file under the GLUE base URL |
//! |-------|------------------------------|
//! | CoLA  | `CoLA.zip`                   |
//! | SST-2 | `SST-2.zip`                  |
//! | QNLI  | `QNLIv2.zip` (GLUE's QNLI v2; the v1 `QNLI.zip` was withdrawn) |
//! | RTE   | `RTE.zip`                    |
//! | STS-B | `STS-B.zip`                  |
//! | MNLI  | `MNLI.zip`                   |
//! | QQP   | `QQP-clean.zip`              |
//! | WNLI  | `WNLI.zip`                   |
//!
//! MRPC is not redistributed by GLUE as a zip (license of the MSR corpus).
//! As GLUE's script does, we download the MSR release file
//! `msr_paraphrase_train.txt` (from SentEval's mirror,
//! [`MRPC_RAW_BASE_URL`]) and GLUE's dev-id list `mrpc_dev_ids.tsv` (from the
//! GLUE base URL), keep them under `MRPC/original/` (`msr_paraphrase_train.txt`,
//! `dev_ids.tsv`) and write `MRPC/train.tsv` (3,668 rows) and `MRPC/dev.tsv`
//! (408 rows) from them. When the GLUE base URL is not the default one (a
//! mirror or a test server), both MRPC files are fetched from that base URL.
//!
//! Every task is installed atomically: the archive is downloaded to a
//! temporary file inside the cache directory, checked to be a readable zip,
//! extracted into a temporary directory there, checked to hold the expected
//! split files, and only then renamed to `cache_dir/<TASK folder>/`. Tasks
//! whose folder already holds the expected files are skipped.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::data::{write_mrpc_splits, DataError};
use super::tasks::GlueTask;

/// Official GLUE download base.
pub const GLUE_BASE_URL: &str = "https://dl.fbaipublicfiles.com/glue/data/";
/// SentEval's copy of the MSR Paraphrase Corpus release files.
pub const MRPC_RAW_BASE_URL: &str = "https://dl.fbaipublicfiles.com/senteval/senteval_data/";

/// Errors while fetching GLUE data.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("GET {url} failed: HTTP {status} {status_text}")]
    Http {
        url: String,
        status: u16,
        status_text: String,
    },
    #[error("GET {url} failed: {message}")]
    Transport { url: String, message: String },
    #[error("{path}: {source}", path = .path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{url}: download saved to {path} is not a readable zip archive: {message}", path = .path.display())]
    BadArchive {
        url: String,
        path: PathBuf,
        message: String,
    },
    #[error("{url}: archive has no {task} folder with {expected}")]
    ArchiveLayout {
        url: String,
        task: GlueTask,
        expected: String,
    },
    #[error("{dir} exists but is incomplete (missing {missing}); remove it and fetch again", dir = .dir.display())]
    Incomplete { dir: PathBuf, missing: String },
    #[error(transparent)]
    Data(#[from] DataError),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> FetchError + '_ {
    move |source| FetchError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Archive file name of a task under the GLUE base URL (`None` for MRPC).
pub fn archive_name(task: GlueTask) -> Option<&'static str> {
    Some(match task {
        GlueTask::Cola => "CoLA.zip",
        GlueTask::Sst2 => "SST-2.zip",
        GlueTask::Qnli => "QNLIv2.zip",
        GlueTask::Rte => "RTE.zip",
        GlueTask::Stsb => "STS-B.zip",
        GlueTask::Mnli => "MNLI.zip",
        GlueTask::Qqp => "QQP-clean.zip",
        GlueTask::Wnli => "WNLI.zip",
        GlueTask::Mrpc => return None,
    })
}

/// File names (relative to the task folder) that a complete task holds.
pub fn required_files(task: GlueTask) -> Vec<&'static str> {
    let mut v = vec![task.train_file()];
    v.extend_from_slice(task.dev_files());
    v
}

fn missing_in(task_dir: &Path, task: GlueTask) -> Vec<&'static str> {
    required_files(task)
        .into_iter()
        .filter(|f| !task_dir.join(f).is_file())
        .collect()
}

fn join_url(base: &str, file: &str) -> String {
    if base.ends_with('/') {
        format!("{base}{file}")
    } else {
        format!("{base}/{file}")
    }
}

/// Removes a temporary file or directory when dropped.
struct TempPath(PathBuf);

impl Drop for TempPath {
    fn drop(&mut self) {
        if self.0.is_dir() {
            let _ = fs::remove_dir_all(&self.0);
        } else if self.0.exists() {
            let _ = fs::remove_file(&self.0);
        }
    }
}

fn temp_name(dir: &Path, stem: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".{stem}.tmp-{}-{n}", std::process::id()))
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(30))
        .timeout_read(Duration::from_secs(120))
        .build()
}

/// Downloads `url` into `dest` (created or truncated). Returns the byte count.
fn download(
    agent: &ureq::Agent,
    url: &str,
    dest: &Path,
    progress: bool,
) -> Result<u64, FetchError> {
    if progress {
        eprintln!("fetch: GET {url}");
    }
    let resp = agent.get(url).call().map_err(|e| match e {
        ureq::Error::Status(status, r) => FetchError::Http {
            url: url.to_string(),
            status,
            status_text: r.status_text().to_string(),
        },
        ureq::Error::Transport(t) => FetchError::Transport {
            url: url.to_string(),
            message: t.to_string(),
        },
    })?;
    let expected: Option<u64> = resp
        .header("Content-Length")
        .and_then(|v| v.trim().parse().ok());
    let mut reader = resp.into_reader();
    let f = File::create(dest).map_err(io_err(dest))?;
    let mut w = BufWriter::new(f);
    let n = io::copy(&mut reader, &mut w).map_err(|e| FetchError::Transport {
        url: url.to_string(),
        message: format!("reading body into {}: {e}", dest.display()),
    })?;
    w.flush().map_err(io_err(dest))?;
    w.into_inner()
        .map_err(|e| FetchError::Io {
            path: dest.to_path_buf(),
            source: e.into_error(),
        })?
        .sync_all()
        .map_err(io_err(dest))?;
    if let Some(exp) = expected {
        if exp != n {
            return Err(FetchError::Transport {
                url: url.to_string(),
                message: format!("truncated body: got {n} of {exp} bytes"),
            });
        }
    }
    if progress {
        eprintln!("fetch: {n} bytes from {url}");
    }
    Ok(n)
}

/// Finds the folder of `task` in an extracted archive: `<root>/<folder>`,
/// else a top-level folder (e.g. `QQP-clean/`, `QNLIv2/`) or the root itself
/// holding the required files.
fn locate_task_dir(root: &Path, task: GlueTask) -> Option<PathBuf> {
    let direct = root.join(task.folder());
    if direct.is_dir() && missing_in(&direct, task).is_empty() {
        return Some(direct);
    }
    let mut subdirs: Vec<PathBuf> = fs::read_dir(root)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir() && p.file_name().is_some_and(|n| n != "__MACOSX"))
        .collect();
    subdirs.sort();
    subdirs.push(root.to_path_buf());
    subdirs.into_iter().find(|d| missing_in(d, task).is_empty())
}

fn install_zip_task(
    agent: &ureq::Agent,
    task: GlueTask,
    cache_dir: &Path,
    base_url: &str,
    progress: bool,
) -> Result<(), FetchError> {
    let name = archive_name(task).expect("not MRPC");
    let url = join_url(base_url, name);
    let zip_tmp = TempPath(temp_name(cache_dir, name));
    download(agent, &url, &zip_tmp.0, progress)?;
    let f = File::open(&zip_tmp.0).map_err(io_err(&zip_tmp.0))?;
    let bad = |e: zip::result::ZipError| FetchError::BadArchive {
        url: url.clone(),
        path: zip_tmp.0.clone(),
        message: e.to_string(),
    };
    let mut archive = zip::ZipArchive::new(f).map_err(bad)?;
    let ex_tmp = TempPath(temp_name(cache_dir, task.folder()));
    fs::create_dir_all(&ex_tmp.0).map_err(io_err(&ex_tmp.0))?;
    archive.extract(&ex_tmp.0).map_err(bad)?;
    let src = locate_task_dir(&ex_tmp.0, task).ok_or_else(|| FetchError::ArchiveLayout {
        url: url.clone(),
        task,
        expected: required_files(task).join(", "),
    })?;
    let dest = cache_dir.join(task.folder());
    fs::rename(&src, &dest).map_err(io_err(&dest))?;
    Ok(())
}

fn install_mrpc(
    agent: &ureq::Agent,
    cache_dir: &Path,
    base_url: &str,
    raw_base_url: &str,
    progress: bool,
) -> Result<(), FetchError> {
    let tmp = TempPath(temp_name(cache_dir, "MRPC"));
    let orig = tmp.0.join("original");
    fs::create_dir_all(&orig).map_err(io_err(&orig))?;
    download(
        agent,
        &join_url(raw_base_url, "msr_paraphrase_train.txt"),
        &orig.join("msr_paraphrase_train.txt"),
        progress,
    )?;
    download(
        agent,
        &join_url(base_url, "mrpc_dev_ids.tsv"),
        &orig.join("dev_ids.tsv"),
        progress,
    )?;
    let (ntrain, ndev) = write_mrpc_splits(&tmp.0)?;
    if progress {
        eprintln!("fetch: MRPC rebuilt: {ntrain} train rows, {ndev} dev rows");
    }
    let dest = cache_dir.join(GlueTask::Mrpc.folder());
    fs::rename(&tmp.0, &dest).map_err(io_err(&dest))?;
    Ok(())
}

/// Downloads the given tasks into `cache_dir/<TASK folder>/` (original GLUE
/// layout, readable by [`super::load_split`] with `cache_dir` as the GLUE
/// directory) and returns those task folders in the order of `tasks`.
/// Tasks already present are skipped. `base_url` is normally
/// [`GLUE_BASE_URL`]; see the module docs for MRPC.
pub fn fetch_glue(
    tasks: &[GlueTask],
    cache_dir: &Path,
    base_url: &str,
    progress: bool,
) -> Result<Vec<PathBuf>, FetchError> {
    let raw_base = if base_url.trim_end_matches('/') == GLUE_BASE_URL.trim_end_matches('/') {
        MRPC_RAW_BASE_URL
    } else {
        base_url
    };
    fetch_glue_from(tasks, cache_dir, base_url, raw_base, progress)
}

/// [`fetch_glue`] with an explicit base URL for the MRPC release file.
pub fn fetch_glue_from(
    tasks: &[GlueTask],
    cache_dir: &Path,
    base_url: &str,
    mrpc_raw_base_url: &str,
    progress: bool,
) -> Result<Vec<PathBuf>, FetchError> {
    fs::create_dir_all(cache_dir).map_err(io_err(cache_dir))?;
    let agent = agent();
    let mut out = Vec::new();
    for &task in tasks {
        let dest = cache_dir.join(task.folder());
        if dest.exists() {
            let missing = missing_in(&dest, task);
            if missing.is_empty() {
                if progress {
                    eprintln!(
                        "fetch: {} already present in {}",
                        task.folder(),
                        dest.display()
                    );
                }
                out.push(dest);
                continue;
            }
            return Err(FetchError::Incomplete {
                dir: dest,
                missing: missing.join(", "),
            });
        }
        match task {
            GlueTask::Mrpc => {
                install_mrpc(&agent, cache_dir, base_url, mrpc_raw_base_url, progress)?
            }
            _ => install_zip_task(&agent, task, cache_dir, base_url, progress)?,
        }
        out.push(dest);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::data::{load_split, Label, Split};
    use super::*;
    use std::collections::HashMap;
    use std::io::{BufRead, BufReader, Cursor, Read};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};
    use std::thread;
    use std::time::Instant;
    use zip::write::SimpleFileOptions;

    fn fixture(rel: &str) -> Vec<u8> {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/glue")
            .join(rel);
        fs::read(&p).unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", p.display()))
    }

    fn make_zip(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts =
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, data) in files {
            if name.ends_with('/') {
                w.add_directory(*name, opts).unwrap();
            } else {
                w.start_file(*name, opts).unwrap();
                w.write_all(data).unwrap();
            }
        }
        w.finish().unwrap().into_inner()
    }

    /// A loopback-only HTTP server answering at most `max_requests` GETs from
    /// `files` (path -> body; 404 otherwise) and stopping after 20 s at most.
    /// Returns the base URL and the log of requested paths.
    fn serve(
        files: HashMap<String, Vec<u8>>,
        max_requests: usize,
    ) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let log2 = log.clone();
        thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut served = 0;
            while served < max_requests && Instant::now() < deadline {
                let (stream, _) = match listener.accept() {
                    Ok(s) => s,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                    Err(_) => break,
                };
                served += 1;
                stream.set_nonblocking(false).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                let mut r = BufReader::new(stream.try_clone().unwrap());
                let mut req = String::new();
                if r.read_line(&mut req).is_err() {
                    continue;
                }
                loop {
                    let mut h = String::new();
                    match r.read_line(&mut h) {
                        Ok(0) | Err(_) => break,
                        Ok(_) if h == "\r\n" || h == "\n" => break,
                        Ok(_) => {}
                    }
                }
                let path = req.split_whitespace().nth(1).unwrap_or("").to_string();
                log2.lock().unwrap().push(path.clone());
                let mut s = stream;
                let _ = match files.get(&path) {
                    Some(body) => s
                        .write_all(
                            format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                                body.len()
                            )
                            .as_bytes(),
                        )
                        .and_then(|_| s.write_all(body)),
                    None => s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found"),
                };
                let _ = s.flush();
                let _ = r.read(&mut [0u8; 0]);
            }
        });
        (format!("http://{addr}/glue/"), log)
    }

    #[test]
    fn fetch_extracts_and_loads() {
        let rte_train = fixture("RTE/train.tsv");
        let rte_dev = fixture("RTE/dev.tsv");
        let rte_zip = make_zip(&[
            ("RTE/", b""),
            ("RTE/train.tsv", &rte_train),
            ("RTE/dev.tsv", &rte_dev),
            ("RTE/test.tsv", b"index\tsentence1\tsentence2\n0\ta\tb\n"),
        ]);
        // QQP-clean.zip with a differently named top folder.
        let qqp_zip = make_zip(&[
            (
                "QQP-clean/train.tsv",
                b"id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n0\t1\t2\tA?\tB?\t0\n",
            ),
            (
                "QQP-clean/dev.tsv",
                b"id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n0\t1\t2\tC?\tD?\t1\n",
            ),
        ]);
        let files = HashMap::from([
            ("/glue/RTE.zip".to_string(), rte_zip),
            ("/glue/QQP-clean.zip".to_string(), qqp_zip),
            (
                "/glue/msr_paraphrase_train.txt".to_string(),
                fixture("MRPC/original/msr_paraphrase_train.txt"),
            ),
            (
                "/glue/mrpc_dev_ids.tsv".to_string(),
                fixture("MRPC/original/dev_ids.tsv"),
            ),
        ]);
        let (base, log) = serve(files, 4);
        let cache = tempfile::tempdir().unwrap();
        let tasks = [GlueTask::Rte, GlueTask::Qqp, GlueTask::Mrpc];
        let dirs = fetch_glue(&tasks, cache.path(), &base, false).unwrap();
        assert_eq!(
            dirs,
            tasks
                .iter()
                .map(|t| cache.path().join(t.folder()))
                .collect::<Vec<_>>()
        );
        assert!(cache.path().join("RTE/test.tsv").is_file());
        // No temporary files left behind.
        let leftovers: Vec<_> = fs::read_dir(cache.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");

        let tr = load_split(cache.path(), GlueTask::Rte, Split::Train).unwrap();
        assert_eq!(tr.len(), 5);
        assert_eq!(
            tr.examples[0].text_a,
            "No Weapons of Mass Destruction Found in Iraq Yet."
        );
        assert_eq!(tr.examples[0].label, Label::Class(1));
        assert_eq!(
            load_split(cache.path(), GlueTask::Rte, Split::Dev)
                .unwrap()
                .len(),
            3
        );
        let q = load_split(cache.path(), GlueTask::Qqp, Split::Dev).unwrap();
        assert_eq!(q.examples[0].label, Label::Class(1));
        let m = load_split(cache.path(), GlueTask::Mrpc, Split::Train).unwrap();
        let md = load_split(cache.path(), GlueTask::Mrpc, Split::Dev).unwrap();
        assert_eq!((m.len(), md.len()), (4, 2));
        assert_eq!(log.lock().unwrap().len(), 4);

        // Second call: everything present, no request made.
        let again = fetch_glue(&tasks, cache.path(), "http://127.0.0.1:9/unused/", false).unwrap();
        assert_eq!(again, dirs);
    }

    #[test]
    fn fetch_404_is_clear() {
        let (base, _log) = serve(HashMap::new(), 1);
        let cache = tempfile::tempdir().unwrap();
        let err = fetch_glue(&[GlueTask::Wnli], cache.path(), &base, false).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, FetchError::Http { status: 404, .. }), "{msg}");
        assert!(
            msg.contains(&format!("{base}WNLI.zip")) && msg.contains("404"),
            "{msg}"
        );
        assert!(!cache.path().join("WNLI").exists());
        assert_eq!(
            fs::read_dir(cache.path()).unwrap().count(),
            0,
            "temp files left behind"
        );
    }

    #[test]
    fn fetch_rejects_non_zip_and_incomplete() {
        let files = HashMap::from([(
            "/glue/CoLA.zip".to_string(),
            b"<html>not a zip</html>".to_vec(),
        )]);
        let (base, _log) = serve(files, 1);
        let cache = tempfile::tempdir().unwrap();
        let err = fetch_glue(&[GlueTask::Cola], cache.path(), &base, false).unwrap_err();
        assert!(matches!(err, FetchError::BadArchive { .. }), "{err}");
        assert!(err.to_string().contains("CoLA.zip"), "{err}");
        assert!(!cache.path().join("CoLA").exists());

        fs::create_dir_all(cache.path().join("SST-2")).unwrap();
        fs::write(cache.path().join("SST-2/train.tsv"), "sentence\tlabel\n").unwrap();
        let err = fetch_glue(&[GlueTask::Sst2], cache.path(), &base, false).unwrap_err();
        assert!(matches!(err, FetchError::Incomplete { .. }), "{err}");
        assert!(err.to_string().contains("dev.tsv"), "{err}");
    }

    #[test]
    fn archive_names() {
        assert_eq!(archive_name(GlueTask::Sst2), Some("SST-2.zip"));
        assert_eq!(archive_name(GlueTask::Qnli), Some("QNLIv2.zip"));
        assert_eq!(archive_name(GlueTask::Qqp), Some("QQP-clean.zip"));
        assert_eq!(archive_name(GlueTask::Mrpc), None);
        assert_eq!(
            required_files(GlueTask::Mnli),
            vec!["train.tsv", "dev_matched.tsv", "dev_mismatched.tsv"]
        );
    }
}
