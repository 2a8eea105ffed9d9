//! Helpers shared by the tests that run the real `blastwall` binary.

#![allow(dead_code)] // each test binary uses a different subset

pub mod alertmanager;
pub mod hostile;
pub mod serve;

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

/// The repository root: example files are referenced relative to it.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Runs the binary with `args` in the repository root.
pub fn blastwall(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_blastwall"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("the binary runs")
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Reads one HTTP/1.1 request from `stream` and returns its body, for the
/// tests' small hand-written receivers (`None` if the body was cut short).
pub fn read_request(stream: &std::net::TcpStream) -> Option<Vec<u8>> {
    use std::io::{BufRead, BufReader, Read};
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(body)
}

/// A webhook receiver on a real socket: its URL, and every JSON body it is sent.
pub fn webhook_receiver() -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let inbox = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            if let Some(body) = read_request(&stream)
                && let Ok(json) = serde_json::from_slice(&body)
            {
                inbox.lock().unwrap().push(json);
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (url, bodies)
}

/// Runs the binary with `args`, failing the test with its stderr unless it succeeds.
pub fn succeed(args: &[&str]) -> Output {
    let o = blastwall(args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    o
}

/// In `dir`: a `platform` key trusted as `publisher` in `trust.toml`, and each
/// bundled plugin of `names` signed with it as `NAME.wasm`. Returns the trust
/// store's path and the signed files' paths.
pub fn sign_bundled(dir: &Path, names: &[&str]) -> (String, Vec<String>) {
    let path = |name: &str| dir.join(name).display().to_string();
    succeed(&["keygen", "--out", &path(""), "--name", "platform"]);
    succeed(&[
        "trust",
        "add",
        "--trust",
        &path("trust.toml"),
        "--tier",
        "publisher",
        &path("platform.pub"),
    ]);
    let signed = names
        .iter()
        .map(|name| {
            let bundled = blastwall::bundled::find(name).unwrap();
            std::fs::write(path(&format!("{name}.plain.wasm")), bundled.wasm).unwrap();
            std::fs::write(path(&format!("{name}.toml")), bundled.manifest).unwrap();
            succeed(&[
                "plugin",
                "sign",
                "--key",
                &path("platform.key"),
                "--manifest",
                &path(&format!("{name}.toml")),
                "--out",
                &path(&format!("{name}.wasm")),
                &path(&format!("{name}.plain.wasm")),
            ]);
            path(&format!("{name}.wasm"))
        })
        .collect();
    (path("trust.toml"), signed)
}
