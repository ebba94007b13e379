//! The daemon's side of the HA socket: client options from the `[ha]`
//! table, and the long-lived sessions (reconnect, dead vs hung).

pub mod session;

use confd_ha::client::{read_secret, ClientOptions, Endpoint};
use coroha_config::HaConfig;

/// From the `[ha]` table; the token and access secret are read from
/// their files here.
pub fn client_options(ha: &HaConfig) -> Result<ClientOptions, String> {
    let token = match (&ha.token, &ha.token_file) {
        (Some(t), _) => t.0.clone().into_bytes(),
        (None, Some(f)) => coroha_config::read_token(f)?,
        (None, None) => vec![],
    };
    let access = match (ha.access_check, &ha.access_secret_file) {
        (Some(check), Some(f)) => Some((check, read_secret(f)?)),
        _ => None,
    };
    Ok(ClientOptions {
        endpoint: Endpoint::parse(&ha.ipc)?,
        token,
        protocol: ha.protocol,
        connect_timeout: ha.connect_timeout.0,
        timeout: ha.timeout.0,
        besecondary_timeout: ha.besecondary_timeout.0,
        access,
    })
}
