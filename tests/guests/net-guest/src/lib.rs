//! Tries to reach the network through WASI sockets. The host must refuse to load it.

use blastwall_sdk::{Error, Incident, Plugin, Report};

struct NetGuest;

impl Plugin for NetGuest {
    fn remediate(_incident: Incident) -> Result<Report, Error> {
        match std::net::TcpStream::connect("127.0.0.1:9") {
            Ok(_) => Ok(Report::new("connected", 0)),
            Err(e) => Err(Error::Failed(e.to_string())),
        }
    }
}

blastwall_sdk::export_plugin!(NetGuest);
