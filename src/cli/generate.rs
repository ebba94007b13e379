//! `coroha generate`: the man pages and shell completions that the Debian
//! package ships, written from the same clap definitions the program
//! parses with, so that they cannot drift from `--help`.

use clap_complete::{Generator, Shell};
use std::path::Path;

/// Section 8: coroha is a daemon and its administration commands.
const SECTION: &str = "8";

/// Write `coroha.8` and one `coroha-SUB.8` page for every subcommand (and
/// `coroha-ha-VERB.8` for the `ha` verbs) into `dir`; returns the files.
pub fn man_pages(cmd: clap::Command, dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir)?;
    // Built once, without the `help` pseudo-command: every subcommand then
    // knows its full name ("coroha-status") for its page's title and
    // synopsis.
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let mut written = vec![];
    write_pages(&cmd, dir, &mut written)?;
    Ok(written)
}

fn write_pages(
    cmd: &clap::Command,
    dir: &Path,
    written: &mut Vec<std::path::PathBuf>,
) -> std::io::Result<()> {
    let page = clap_mangen::Man::new(cmd.clone())
        .section(SECTION)
        .manual("coroha manual")
        .source(format!("coroha {}", env!("CARGO_PKG_VERSION")));
    written.push(page.generate_to(dir)?);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, dir, written)?;
    }
    Ok(())
}

/// Write the completion script for `shell` into `dir`, named as that
/// shell's completion directory expects (`coroha`, `_coroha`,
/// `coroha.fish`); returns the file.
pub fn completions(
    mut cmd: clap::Command,
    shell: Shell,
    dir: &Path,
) -> std::io::Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir)?;
    let name = match shell {
        // bash-completion loads /usr/share/bash-completion/completions/NAME
        // for the command NAME.
        Shell::Bash => "coroha".to_owned(),
        _ => shell.file_name("coroha"),
    };
    let path = dir.join(name);
    let mut file = std::fs::File::create(&path)?;
    clap_complete::generate(shell, &mut cmd, "coroha", &mut file);
    Ok(path)
}
