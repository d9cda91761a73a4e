//! Man pages generated from the clap definitions, one per command and subcommand, so the
//! documentation never drifts from the flags.

use clap::CommandFactory;

/// Renders the man pages of every binary: (file name, roff text).
pub fn pages() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    render(
        &super::artifact::Cli::command(),
        "mender-artifact",
        &mut out,
    );
    render(&super::update::Cli::command(), "mender-update", &mut out);
    render(&super::server::Cli::command(), "mender-server", &mut out);
    out
}

fn render(cmd: &clap::Command, name: &str, out: &mut Vec<(String, Vec<u8>)>) {
    let cmd = cmd
        .clone()
        .name(name.to_string())
        .bin_name(name.replace('-', " "));
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .title(name.to_uppercase())
        .section("1")
        .source(format!("mender-rs {}", env!("CARGO_PKG_VERSION")))
        .manual("Mender")
        .render(&mut buf)
        .expect("rendering to memory");
    out.push((format!("{name}.1"), buf));
    for sub in cmd.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        render(sub, &format!("{name}-{}", sub.get_name()), out);
    }
}
