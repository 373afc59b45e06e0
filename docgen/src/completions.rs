//! Shell completions for `pictl` and `pid` (bash, zsh, fish), from their clap commands.

use clap_complete::Shell;

/// Every completion script: `(file name, script)`, named as each shell looks them up
/// (`pictl.bash`, `_pictl`, `pictl.fish`).
pub(crate) fn scripts() -> Vec<(String, Vec<u8>)> {
    let mut scripts = Vec::new();
    for (name, command) in [("pictl", pictl::command()), ("pid", pid::cli::command())] {
        for (shell, file) in [
            (Shell::Bash, format!("{name}.bash")),
            (Shell::Zsh, format!("_{name}")),
            (Shell::Fish, format!("{name}.fish")),
        ] {
            let mut command = command.clone();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, name, &mut script);
            scripts.push((file, script));
        }
    }
    scripts
}
