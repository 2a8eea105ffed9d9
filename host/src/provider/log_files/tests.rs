use std::io::Read;
use std::os::unix::fs::symlink;

use flate2::read::GzDecoder;

use super::*;

fn cx() -> CallContext {
    CallContext::decision("test", std::time::Duration::from_secs(30))
}

fn set(root: &std::path::Path, keep: u32) -> LogFiles {
    let config = LogSetConfig {
        root: root.to_path_buf(),
        pattern: "*.log".into(),
        keep,
        min_bytes: 1,
    };
    LogFiles::new(BTreeMap::from([("app".to_string(), config)]))
}

fn lines(n: usize) -> String {
    (0..n)
        .map(|i| format!("2026-11-23T03:00:00Z INFO request {i} served in 12ms\n"))
        .collect()
}

#[tokio::test]
async fn rotates_compresses_and_frees_space() {
    let dir = tempfile::tempdir().unwrap();
    let body = lines(20_000);
    std::fs::write(dir.path().join("app.log"), &body).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a log").unwrap();
    let rotation = set(dir.path(), 3).rotate(&cx(), "app").await.unwrap();
    assert_eq!(rotation.files_rotated, 1);
    let archive = std::fs::read(dir.path().join("app.log.1.gz")).unwrap();
    assert_eq!(
        rotation.bytes_freed,
        body.len() as u64 - archive.len() as u64
    );
    assert!(
        rotation.bytes_freed > body.len() as u64 / 2,
        "text compresses well"
    );
    let mut restored = String::new();
    GzDecoder::new(archive.as_slice())
        .read_to_string(&mut restored)
        .unwrap();
    assert_eq!(restored, body, "the archive holds every line");
    assert_eq!(
        std::fs::metadata(dir.path().join("app.log")).unwrap().len(),
        0
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("notes.txt")).unwrap(),
        "not a log"
    );
}

#[tokio::test]
async fn keeps_only_the_configured_number_of_archives() {
    let dir = tempfile::tempdir().unwrap();
    let provider = set(dir.path(), 2);
    for round in 0..4 {
        std::fs::write(dir.path().join("app.log"), format!("round {round}\n")).unwrap();
        provider.rotate(&cx(), "app").await.unwrap();
    }
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["app.log", "app.log.1.gz", "app.log.2.gz"]);
    let mut newest = String::new();
    GzDecoder::new(std::fs::File::open(dir.path().join("app.log.1.gz")).unwrap())
        .read_to_string(&mut newest)
        .unwrap();
    assert_eq!(newest, "round 3\n");
}

#[tokio::test]
async fn never_follows_symlinks_out_of_the_root() {
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.log");
    std::fs::write(&secret, lines(100)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    symlink(&secret, dir.path().join("escape.log")).unwrap();
    std::fs::create_dir(dir.path().join("nested.log")).unwrap();
    let rotation = set(dir.path(), 1).rotate(&cx(), "app").await.unwrap();
    assert_eq!(rotation.files_rotated, 0);
    assert_eq!(
        std::fs::read_to_string(&secret).unwrap(),
        lines(100),
        "the target outside is untouched"
    );
}

#[tokio::test]
async fn refuses_to_overwrite_an_archive_name_that_is_a_symlink() {
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.log"), "line\n").unwrap();
    symlink(&victim, dir.path().join("app.log.1.gz")).unwrap();
    let err = set(dir.path(), 3).rotate(&cx(), "app").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "refusing to rotate over app.log.1.gz: it exists and is not a regular file (after rotating 0 files, 0 bytes freed)"
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("app.log")).unwrap(),
        "line\n",
        "nothing lost"
    );
}

#[tokio::test]
async fn keep_zero_truncates_and_unknown_sets_are_not_found() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.log"), "0123456789").unwrap();
    let rotation = set(dir.path(), 0).rotate(&cx(), "app").await.unwrap();
    assert_eq!(
        rotation,
        Rotation {
            files_rotated: 1,
            bytes_freed: 10
        }
    );
    let err = set(dir.path(), 0).rotate(&cx(), "db").await.unwrap_err();
    assert_eq!(
        err,
        ProviderError::NotFound("log set \"db\" is not configured on this host".into())
    );
    let missing = set(&dir.path().join("gone"), 1)
        .rotate(&cx(), "app")
        .await
        .unwrap_err();
    assert!(
        missing.to_string().starts_with("cannot open log set root"),
        "{missing}"
    );
}

#[tokio::test]
async fn a_planted_temporary_symlink_is_replaced_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.log"), "app line\n").unwrap();
    std::fs::write(dir.path().join("db.log.keep"), "db data").unwrap();
    symlink(
        dir.path().join("db.log.keep"),
        dir.path().join("app.log.1.gz.tmp"),
    )
    .unwrap();
    set(dir.path(), 2).rotate(&cx(), "app").await.unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("db.log.keep")).unwrap(),
        "db data"
    );
    assert!(!dir.path().join("app.log.1.gz").is_symlink());
    assert!(!dir.path().join("app.log.1.gz.tmp").exists());
}

#[tokio::test]
async fn hard_linked_files_are_never_truncated() {
    let outside = tempfile::tempdir().unwrap();
    let precious = outside.path().join("precious.log");
    std::fs::write(&precious, "do not truncate me\n").unwrap();
    let dir = tempfile::tempdir().unwrap();
    if std::fs::hard_link(&precious, dir.path().join("linked.log")).is_err() {
        // Two temporary directories on different filesystems: link in one place instead.
        std::fs::write(dir.path().join("a.log"), "x\n").unwrap();
        std::fs::hard_link(dir.path().join("a.log"), dir.path().join("b.log")).unwrap();
        let rotation = set(dir.path(), 1).rotate(&cx(), "app").await.unwrap();
        assert_eq!(rotation.files_rotated, 0);
        return;
    }
    let rotation = set(dir.path(), 1).rotate(&cx(), "app").await.unwrap();
    assert_eq!(rotation.files_rotated, 0);
    assert_eq!(
        std::fs::read_to_string(&precious).unwrap(),
        "do not truncate me\n"
    );
}

#[tokio::test]
async fn concurrent_rotations_of_one_set_do_not_overlap() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.log"), lines(50_000)).unwrap();
    let provider = std::sync::Arc::new(set(dir.path(), 3));
    let cx = cx();
    let (a, b) = tokio::join!(provider.rotate(&cx, "app"), provider.rotate(&cx, "app"));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        a.files_rotated + b.files_rotated,
        1,
        "the second rotation saw an empty file"
    );
    let mut restored = String::new();
    GzDecoder::new(std::fs::File::open(dir.path().join("app.log.1.gz")).unwrap())
        .read_to_string(&mut restored)
        .unwrap();
    assert_eq!(restored, lines(50_000));
}
