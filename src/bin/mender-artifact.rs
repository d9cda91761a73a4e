//! `mender-artifact`: writes, reads, validates and signs Mender Artifacts.

fn main() {
    match mender::cli::artifact::run(std::env::args_os()) {
        Ok(()) => {}
        Err(e) => {
            if !e.message.is_empty() {
                eprintln!("mender-artifact: {}", e.message);
            }
            std::process::exit(e.code);
        }
    }
}
