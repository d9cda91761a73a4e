//! `mender-server`: the Mender server with embedded storage.

fn main() {
    if let Err(e) = mender::cli::server::run(std::env::args_os()) {
        if !e.message.is_empty() {
            eprintln!("mender-server: {}", e.message);
        }
        std::process::exit(e.code);
    }
}
