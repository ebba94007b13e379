//! What a configuration needs of the host it runs on: the files it names
//! can be read, the hook programs can be run, and nothing that is not a
//! socket sits where the control socket goes. `coroha run` and
//! `coroha check-config` make the same checks, so a configuration that
//! passes one is not refused by the other.

use crate::{key_offset, read_located, Config, ConfigError};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The HA token in `path`: the file's content without its trailing line
/// break (`echo token > file` writes one, and NSO/ConfD's own token has
/// none).
pub fn read_token(path: &Path) -> Result<Vec<u8>, String> {
    let mut token = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if token.ends_with(b"\n") {
        token.pop();
        if token.ends_with(b"\r") {
            token.pop();
        }
    }
    if token.is_empty() {
        return Err(format!("{}: the token file is empty", path.display()));
    }
    Ok(token)
}

/// Where `program` runs from: a path as given, a bare name on `PATH`.
fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Why `program` cannot be run, if it cannot.
fn not_runnable(program: &str) -> Option<String> {
    let Some(path) = find_program(program) else {
        return Some(format!("{program:?} is not on PATH"));
    };
    match std::fs::metadata(&path) {
        Err(e) => Some(format!("{}: {e}", path.display())),
        Ok(m) if !m.is_file() => Some(format!("{} is not a file", path.display())),
        Ok(m) if m.permissions().mode() & 0o111 == 0 => {
            Some(format!("{} is not executable", path.display()))
        }
        Ok(_) => None,
    }
}

/// What [`Config::load_checked`] checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checks {
    /// The file, and this host's files and programs it names (what `run`
    /// needs).
    FileAndHost,
    /// The file alone: one written for another machine.
    FileOnly,
}

impl Config {
    /// [`Config::load`] and, with [`Checks::FileAndHost`], the checks
    /// against this host; the warnings (assumptions given up) beside the
    /// configuration.
    pub fn load_checked(
        path: &Path,
        checks: Checks,
    ) -> Result<(Config, Vec<ConfigError>), Vec<ConfigError>> {
        let (text, file) = read_located(path)?;
        let config = Config::parse(&text, &file)?;
        if checks == Checks::FileAndHost {
            let errors = config.host_problems(&text, &file);
            if !errors.is_empty() {
                return Err(errors);
            }
        }
        let warnings = config
            .warnings(&text)
            .into_iter()
            .map(|(offset, message)| ConfigError::at(&text, &file, offset, message))
            .collect();
        Ok((config, warnings))
    }

    /// What this host lacks for the configuration, located in `text`.
    pub fn host_problems(&self, text: &str, file: &str) -> Vec<ConfigError> {
        let at = |table: &str, key: &str, message: String| {
            ConfigError::at(text, file, key_offset(text, table, key), message)
        };
        let mut out = Vec::new();
        if let Some(f) = &self.ha.token_file {
            if let Err(e) = read_token(f) {
                out.push(at("ha", "token_file", format!("[ha] token_file: {e}")));
            }
        }
        if let Some(f) = &self.http.token_file {
            if let Err(e) = read_token(f) {
                out.push(at("http", "token_file", format!("[http] token_file: {e}")));
            }
        }
        for (key, file) in [
            ("tls_cert", &self.http.tls_cert),
            ("tls_key", &self.http.tls_key),
        ] {
            if let Some(f) = file {
                if let Err(e) = std::fs::read(f) {
                    let message = format!("[http] {key}: {}: {e}", f.display());
                    out.push(at("http", key, message));
                }
            }
        }
        if let Some(f) = &self.ha.access_secret_file {
            if let Err(e) = std::fs::read(f) {
                let message = format!("[ha] access_secret_file: {}: {e}", f.display());
                out.push(at("ha", "access_secret_file", message));
            }
        }
        let hooks = [
            ("on_primary", &self.hooks.on_primary),
            ("on_secondary", &self.hooks.on_secondary),
            ("on_none", &self.hooks.on_none),
            ("fence", &self.hooks.fence),
            ("fence_node", &self.hooks.fence_node),
        ];
        for (key, argv) in hooks {
            let Some(program) = argv.first() else {
                continue;
            };
            if let Some(why) = not_runnable(program) {
                out.push(at(
                    "hooks",
                    key,
                    format!("[hooks] {key}: {why}: expected a program this daemon can run"),
                ));
            }
        }
        if self.pacemaker.role_attribute.is_some() {
            if let Some(why) = not_runnable("attrd_updater") {
                out.push(at(
                    "pacemaker",
                    "role_attribute",
                    format!(
                        "[pacemaker] role_attribute: {why}: the attribute is published with \
                         Pacemaker's attrd_updater (Debian: pacemaker-cli-utils)"
                    ),
                ));
            }
        }
        let socket = &self.control.socket;
        if let Ok(m) = std::fs::symlink_metadata(socket) {
            if !m.file_type().is_socket() {
                out.push(at(
                    "control",
                    "socket",
                    format!(
                        "[control] socket: {} exists and is not a socket: expected a path for \
                         the control socket (the file is left alone)",
                        socket.display()
                    ),
                ));
            }
        }
        let groups = [
            ("group", &self.control.group),
            ("admin_group", &self.control.admin_group),
        ];
        for (key, group) in groups {
            let Some(name) = group else { continue };
            if !matches!(nix::unistd::Group::from_name(name), Ok(Some(_))) {
                out.push(at(
                    "control",
                    key,
                    format!("[control] {key} = {name:?}: no such group on this host"),
                ));
            }
        }
        let dir = &self.cluster.state_dir;
        if dir.exists() && !dir.is_dir() {
            out.push(at(
                "cluster",
                "state_dir",
                format!(
                    "[cluster] state_dir: {} exists and is not a directory",
                    dir.display()
                ),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("coroha-host-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn config(extra: &str, d: &Path) -> (Config, String) {
        let text = format!(
            "[cluster]\nstate_dir = \"{}/state\"\n[control]\nsocket = \"{}/control.sock\"\n{extra}\n\
             [[node]]\nname = \"n1\"\nid = 1\naddress = \"10.0.0.1\"\n",
            d.display(),
            d.display()
        );
        (Config::parse(&text, "h.toml").unwrap(), text)
    }

    #[test]
    fn the_token_file_loses_its_trailing_line_break_only() {
        let d = dir("token");
        for (content, token) in [
            ("s3cret\n", "s3cret"),
            ("s3cret\r\n", "s3cret"),
            ("s3cret", "s3cret"),
            (" s3cret \n\n", " s3cret \n"),
        ] {
            std::fs::write(d.join("t"), content).unwrap();
            assert_eq!(read_token(&d.join("t")).unwrap(), token.as_bytes());
        }
        std::fs::write(d.join("t"), "\n").unwrap();
        assert!(read_token(&d.join("t")).unwrap_err().contains("empty"));
    }

    #[test]
    fn a_missing_token_file_and_hook_program_are_located_errors() {
        let d = dir("missing");
        let extra = format!(
            "[ha]\ntoken_file = \"{}/nope\"\n[hooks]\non_primary = [\"/nonexistent/hook\"]\nfence = [\"true\"]\n",
            d.display()
        );
        let (c, text) = config(&extra, &d);
        let errors = c.host_problems(&text, "h.toml");
        let located: Vec<(usize, bool)> = errors
            .iter()
            .map(|e| {
                (
                    e.line,
                    e.message.contains("token_file") || e.message.contains("on_primary"),
                )
            })
            .collect();
        assert_eq!(located, vec![(6, true), (8, true)], "{errors:?}");
    }

    #[test]
    fn a_hook_that_is_not_executable_is_refused() {
        let d = dir("exec");
        std::fs::write(d.join("hook"), "#!/bin/sh\n").unwrap();
        let extra = format!("[hooks]\nfence = [\"{}/hook\"]\n", d.display());
        let (c, text) = config(&extra, &d);
        let errors = c.host_problems(&text, "h.toml");
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].message.contains("is not executable"),
            "{}",
            errors[0]
        );
        std::fs::set_permissions(d.join("hook"), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(c.host_problems(&text, "h.toml").is_empty());
    }

    #[test]
    fn a_regular_file_at_the_socket_path_is_refused_and_kept() {
        let d = dir("socket");
        std::fs::write(d.join("control.sock"), "not a socket").unwrap();
        let (c, text) = config("", &d);
        let errors = c.host_problems(&text, "h.toml");
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].message.contains("is not a socket"),
            "{}",
            errors[0]
        );
        assert_eq!(
            std::fs::read_to_string(d.join("control.sock")).unwrap(),
            "not a socket"
        );
    }
}
