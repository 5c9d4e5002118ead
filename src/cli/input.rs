//! What a command reads from its operator: a secret at a hidden prompt, or
//! whole from stdin — never from argv, never echoed, refused rather than
//! cut.

use std::io::{IsTerminal, Read};

use super::CliError;

/// The most stdin may hold for one value (refused beyond, never cut).
pub const MAX_INPUT: usize = 64 * 1024;

/// A secret: at a hidden prompt (`prompt`) when stdin is a terminal, else
/// stdin whole ([`stdin_whole`]). `what` names it in errors ("the key").
pub fn secret(prompt: &str, what: &str) -> Result<String, CliError> {
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password(prompt).map_err(|e| CliError::Usage(format!("cannot read {what}: {e}")));
    }
    stdin_whole(what)
}

/// All of stdin, refused (nothing written) beyond [`MAX_INPUT`] or when it
/// is not UTF-8.
pub fn stdin_whole(what: &str) -> Result<String, CliError> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .take(MAX_INPUT as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| CliError::Usage(format!("cannot read {what} from stdin: {e}")))?;
    if bytes.len() > MAX_INPUT {
        return Err(CliError::Usage(format!(
            "{what} on stdin is longer than {} KiB; nothing written",
            MAX_INPUT / 1024
        )));
    }
    String::from_utf8(bytes).map_err(|_| CliError::Usage(format!("{what} on stdin is not UTF-8; nothing written")))
}
