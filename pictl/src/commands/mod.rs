//! One module per command area. Each command checks its arguments before it connects, asks the
//! daemon, and prints its result only when everything it needs has arrived, so `--json` output
//! is always exactly one document.

pub mod audit;
pub mod auth;
pub mod enroll;
pub mod import;
pub mod luks;
pub mod machine;
pub mod offline;
pub mod policy;
pub mod ssh;
pub mod status;
pub mod token;

use crate::cli::audit::AuditCommand;
use crate::cli::auth::AuthCommand;
use crate::cli::offline::OfflineCommand;
use crate::cli::policy::PolicyCommand;
use crate::cli::ssh::SshCommand;
use crate::cli::{Cli, Command};
use crate::error::{Error, Exit};
use crate::{output, Io};
use protocol::paths::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_IO_TIMEOUT};
use protocol::{AdminRequest, AdminResponse, Client, Request, Response};
use serde_json::Value;
use std::path::PathBuf;

/// What every command needs: the streams, the output mode and a connection made on first use.
pub struct Ctx<'a, 'io> {
    pub io: &'a mut Io<'io>,
    pub json: bool,
    socket: PathBuf,
    /// The uid the daemon must run as (`--daemon-uid`).
    daemon_uid: u32,
    client: Option<Client>,
}

impl<'a, 'io> Ctx<'a, 'io> {
    pub fn new(io: &'a mut Io<'io>, json: bool, socket: PathBuf, daemon_uid: u32) -> Self {
        Ctx {
            io,
            json,
            socket,
            daemon_uid,
            client: None,
        }
    }

    /// Connect and make sure the daemon's uid listens: nothing (a PIN, an OTP key, a LUKS
    /// passphrase) is sent to a process of another uid that took the socket.
    fn open(&self, connect: std::time::Duration, io: std::time::Duration) -> Result<Client, Error> {
        let client = Client::connect_with(&self.socket, connect, io)?;
        client.require_peer_uid(self.daemon_uid)?;
        Ok(client)
    }

    /// Connect now with these timeouts instead of the defaults (sshd waits on `ssh keys`).
    pub fn connect_with(
        &mut self,
        connect: std::time::Duration,
        io: std::time::Duration,
    ) -> Result<(), Error> {
        self.client = Some(self.open(connect, io)?);
        Ok(())
    }

    /// Send one request. `Response::Error` becomes `Error::Daemon`.
    pub fn call(&mut self, request: &Request) -> Result<Response, Error> {
        let mut client = match self.client.take() {
            Some(client) => client,
            None => self.open(DEFAULT_CONNECT_TIMEOUT, DEFAULT_IO_TIMEOUT)?,
        };
        let answer = client.call(request);
        self.client = Some(client);
        match answer? {
            Response::Error { code, message } => Err(Error::Daemon { code, message }),
            response => Ok(response),
        }
    }

    /// Send an administration request and unwrap its answer.
    pub fn admin(
        &mut self,
        request: AdminRequest,
        what: &'static str,
    ) -> Result<AdminResponse, Error> {
        match self.call(&Request::Admin(request))? {
            Response::Admin(answer) => Ok(answer),
            other => Err(Error::unexpected(what, &other)),
        }
    }

    /// Print human text on stdout.
    pub fn print(&mut self, text: &str) -> Result<(), Error> {
        self.io
            .stdout
            .write_all(text.as_bytes())
            .and_then(|()| self.io.stdout.flush())
            .map_err(Error::Output)
    }

    /// Print the command's one JSON document on stdout.
    pub fn print_json(&mut self, value: &Value) -> Result<(), Error> {
        output::write_json(self.io.stdout, value).map_err(Error::Output)
    }

    /// Print a remark for humans on stderr (never part of the result).
    pub fn note(&mut self, text: &str) -> Result<(), Error> {
        writeln!(self.io.stderr, "{text}").map_err(Error::Output)
    }
}

pub fn dispatch(cli: Cli, io: &mut Io<'_>) -> Result<Exit, Error> {
    let mut ctx = Ctx::new(io, cli.json, cli.socket, cli.daemon_uid);
    match cli.command {
        Command::Token(command) => token::run(&mut ctx, command),
        Command::Enroll(args) => enroll::run(&mut ctx, args),
        Command::Auth(AuthCommand::Test(args)) => auth::test(&mut ctx, &args),
        Command::Status => status::run(&mut ctx),
        Command::Audit(AuditCommand::Show(args)) => audit::show(&mut ctx, &args),
        Command::Policy(PolicyCommand::Check(args)) => policy::check(&mut ctx, args),
        Command::Machine(command) => machine::run(&mut ctx, command),
        Command::Ssh(SshCommand::Keys(args)) => ssh::keys(&mut ctx, &args),
        Command::Luks(command) => luks::run(&mut ctx, command),
        Command::Import(command) => import::run(&mut ctx, command),
        Command::Offline(OfflineCommand::Status(args)) => offline::status(&mut ctx, &args),
    }
}
