//! `mender-update`: installs Mender Artifacts on this device, standalone.

fn main() {
    match mender::cli::update::run(std::env::args_os()) {
        Ok(()) => {}
        Err(e) => {
            if !e.message.is_empty() {
                eprintln!("Could not fulfill request: {}", e.message);
            }
            std::process::exit(e.code);
        }
    }
}
