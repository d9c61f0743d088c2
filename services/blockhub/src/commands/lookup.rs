//! `blockhub lookup ID`: a person's roster entries and latest pay.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use blockhub_gateway::proto::person_lookup_client::PersonLookupClient;
use blockhub_gateway::proto::{BatchLookupRequest, LookupReply, LookupRequest, Provenance};
use clap::Args;
use serde_json::json;
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::ClientArgs;
use crate::config::DataDir;

/// Flags of `lookup`.
#[derive(Debug, Args)]
pub struct LookupArgs {
    /// The citizen ID (18 digits, or the legacy 15).
    #[arg(required_unless_present = "ids_file")]
    pub citizen_id: Option<String>,
    /// Look up every ID in this file (one per line; blank lines and lines
    /// starting with # are skipped) in one batch; prints one JSON object
    /// per ID, in file order.
    #[arg(long, conflicts_with = "citizen_id")]
    pub ids_file: Option<std::path::PathBuf>,
    /// Print the answer as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also show, for each fact, which source, file, row and event stated
    /// it, and when.
    #[arg(long)]
    pub provenance: bool,
    /// Why you ask, as the gateway's policy names it (such as enforcement).
    /// Default with the hub's operator token: operations.
    #[arg(long, env = "BLOCKHUB_PURPOSE")]
    pub purpose: Option<String>,
    /// The court case the look-up serves, as （2025）浙0681执1234号.
    #[arg(long = "case")]
    pub case_number: Option<String>,
    /// Who operates this client, recorded in the gateway's audit log.
    /// Default: the login name.
    #[arg(long, env = "BLOCKHUB_OPERATOR")]
    pub operator: Option<String>,
    /// Gateway settings.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Connects to the gateway.
pub async fn connect(gateway: &str) -> Result<Channel> {
    Endpoint::from_shared(gateway.to_string())
        .with_context(|| format!("{gateway} is not a valid gateway URL"))?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .connect()
        .await
        .with_context(|| {
            format!("cannot reach the gateway at {gateway}; is the hub running (blockhub up)?")
        })
}

/// Connects to the gateway as `client` says: over TLS for an https URL,
/// with the CA to trust and, for mutual TLS, a client certificate.
pub async fn connect_as(gateway: &str, client: &ClientArgs) -> Result<Channel> {
    if !gateway.starts_with("https://") {
        return connect(gateway).await;
    }
    let read = |path: &std::path::Path| {
        std::fs::read(path).with_context(|| format!("reading {}", path.display()))
    };
    let Some(ca) = &client.ca_cert else {
        anyhow::bail!(
            "{gateway} speaks TLS: pass --ca-cert (or BLOCKHUB_GATEWAY_CA) with the CA \
             certificate that signed it"
        );
    };
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(ca)?));
    if let (Some(cert), Some(key)) = (&client.client_cert, &client.client_key) {
        tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
    }
    Endpoint::from_shared(gateway.to_string())
        .with_context(|| format!("{gateway} is not a valid gateway URL"))?
        .tls_config(tls)
        .context("the TLS settings were refused")?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .connect()
        .await
        .with_context(|| {
            format!(
                "cannot reach the gateway at {gateway} over TLS; is it running, and does \
                 --ca-cert name the CA that signed its certificate?"
            )
        })
}

/// Adds the bearer token to a request.
pub fn authorised<T>(message: T, token: Option<&str>) -> Result<tonic::Request<T>> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        let value = format!("Bearer {token}")
            .parse()
            .context("the token has invalid characters")?;
        request.metadata_mut().insert("authorization", value);
    }
    Ok(request)
}

/// Names the person operating the client in the binary header the audit
/// log reads, so that a name in Chinese arrives intact.
pub fn with_operator<T>(mut request: tonic::Request<T>, operator: &str) -> tonic::Request<T> {
    if !operator.is_empty() {
        request.metadata_mut().insert_bin(
            blockhub_gateway::access::OPERATOR_HEADER,
            tonic::metadata::MetadataValue::from_bytes(operator.as_bytes()),
        );
    }
    request
}

/// The operator's name: the flag, else the login name (USER, LOGNAME),
/// else the account the process runs as.
pub fn operator_name(flag: Option<&str>) -> String {
    let login = || {
        ["USER", "LOGNAME"]
            .iter()
            .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
    };
    flag.map(str::to_string)
        .or_else(login)
        .unwrap_or_else(|| format!("uid {}", process_uid()))
}

/// The process's user id, read from /proc so that no unsafe call is needed.
fn process_uid() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().next().map(str::to_string))
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Runs `lookup`.
pub async fn run(data: &DataDir, args: LookupArgs) -> Result<ExitCode> {
    let (gateway, token) = super::client_settings(data, &args.client)?;
    let channel = connect_as(&gateway, &args.client).await?;
    // The hub's own operator token acts for the operator department, whose
    // purpose in the shipped policy is "operations".
    let purpose = args.purpose.clone().unwrap_or_else(|| {
        if args.client.token.is_none() {
            "operations".into()
        } else {
            String::new()
        }
    });
    let operator = operator_name(args.operator.as_deref());
    let case_number = args.case_number.clone().unwrap_or_default();
    if let Some(file) = &args.ids_file {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let lines: Vec<(usize, String)> = text
            .lines()
            .enumerate()
            .map(|(n, line)| (n + 1, line.trim().to_string()))
            .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
            .collect();
        let message = BatchLookupRequest {
            citizen_ids: lines.iter().map(|(_, id)| id.clone()).collect(),
            provenance: args.provenance,
            purpose,
            case_number,
        };
        let request = with_operator(authorised(message, token.as_deref())?, &operator);
        let mut stream = match PersonLookupClient::new(channel).batch_lookup(request).await {
            Ok(stream) => stream.into_inner(),
            Err(status) => return Ok(refused(&status, args.client.token.is_some())),
        };
        let mut missing = 0;
        loop {
            let result = match stream.message().await {
                Ok(Some(result)) => result,
                Ok(None) => break,
                Err(status) => return Ok(refused(&status, args.client.token.is_some())),
            };
            let line = lines.get(result.index as usize).map_or(0, |(n, _)| *n);
            let mut object = json!({"line": line, "outcome": result.outcome});
            if let Some(reply) = &result.reply {
                object["answer"] = reply_json(reply);
            } else {
                missing += 1;
            }
            if !result.error.is_empty() {
                object["error"] = json!(result.error);
            }
            println!("{object}");
        }
        return Ok(if missing == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(3)
        });
    }
    let citizen_id = args.citizen_id.clone().unwrap_or_default();
    let request = authorised(
        LookupRequest {
            citizen_id,
            provenance: args.provenance,
            purpose,
            case_number,
        },
        token.as_deref(),
    )?;
    let request = with_operator(request, &operator);
    let reply = match PersonLookupClient::new(channel).lookup(request).await {
        Ok(reply) => reply.into_inner(),
        Err(status) => return Ok(refused(&status, args.client.token.is_some())),
    };
    if args.json {
        println!("{}", serde_json::to_string(&reply_json(&reply))?);
    } else {
        print_reply(&reply);
    }
    Ok(ExitCode::SUCCESS)
}

/// Says why the gateway refused, with what to do, and the exit code.
fn refused(status: &tonic::Status, token_given: bool) -> ExitCode {
    let hint = match status.code() {
        Code::NotFound | Code::InvalidArgument => String::new(),
        Code::Unauthenticated if token_given => {
            "; check the token (tokens issued after the gateway started take effect \
             when it restarts)"
                .into()
        }
        Code::Unauthenticated => "; pass --token or BLOCKHUB_TOKEN".into(),
        Code::PermissionDenied => {
            "; the gateway's policy decides what each department may ask".into()
        }
        Code::Unavailable => "; the gateway or its store is unavailable, try again".into(),
        _ => String::new(),
    };
    eprintln!("lookup: {}{hint}", status.message());
    ExitCode::from(match status.code() {
        Code::NotFound => 3,
        Code::Unauthenticated | Code::PermissionDenied => 4,
        _ => 5,
    })
}

/// The reply as JSON, with the employer (the unit of the active post) and
/// the latest pay spelled out.
pub fn reply_json(reply: &LookupReply) -> serde_json::Value {
    let posts: Vec<serde_json::Value> = reply
        .posts
        .iter()
        .map(|post| {
            json!({
                "unit_code": post.unit_code,
                "unit_name": post.unit_name,
                "post_category": post.post_category,
                "post_category_label": post.post_category_label,
                "employment_form": post.employment_form,
                "hire_date": empty_to_null(&post.hire_date),
                "contract_start": empty_to_null(&post.contract_start),
                "contract_end": empty_to_null(&post.contract_end),
                "contract_open_ended": post.contract_open_ended,
                "status": post.status,
                "status_label": post.status_label,
                "left_on": empty_to_null(&post.left_on),
                "provenance": post.provenance.as_ref().map(provenance_json),
            })
        })
        .collect();
    let employers: Vec<&str> = reply
        .employers
        .iter()
        .map(|employer| employer.unit_code.as_str())
        .collect();
    let payment = reply.latest_payment.as_ref().map(|p| {
        json!({"month": p.month, "unit_code": p.unit_code,
               "unit_name": empty_to_null(&p.unit_name),
               "gross": empty_to_null(&p.gross), "net": empty_to_null(&p.net),
               "provenance": p.provenance.as_ref().map(provenance_json)})
    });
    json!({
        "id": empty_to_null(&reply.citizen_id),
        "name": empty_to_null(&reply.name),
        "employers": employers,
        "withheld": reply.withheld,
        "posts": posts,
        "latest_payment": payment,
    })
}

fn provenance_json(p: &Provenance) -> serde_json::Value {
    json!({"source_system": p.source_system, "location": p.location,
           "position": p.position, "event_id": p.event_id, "observed_at": p.observed_at,
           "exported_at": empty_to_null(&p.exported_at)})
}

fn provenance_line(p: &Provenance) -> String {
    format!(
        "    from {} {} row {}, event {}, read {}{}",
        p.source_system,
        p.location,
        p.position,
        p.event_id,
        p.observed_at,
        match p.exported_at.as_str() {
            "" => String::new(),
            exported => format!(", exported {exported}"),
        }
    )
}

fn empty_to_null(text: &str) -> serde_json::Value {
    if text.is_empty() {
        serde_json::Value::Null
    } else {
        json!(text)
    }
}

fn print_reply(reply: &LookupReply) {
    let shown = |text: &str| {
        if text.is_empty() {
            "(not shared)".to_string()
        } else {
            text.to_string()
        }
    };
    println!("{} {}", shown(&reply.citizen_id), shown(&reply.name));
    for employer in &reply.employers {
        println!("  employer {} ({})", employer.unit_name, employer.unit_code);
    }
    if !reply.withheld.is_empty() {
        println!(
            "  not shared with your department: {}",
            reply.withheld.join(", ")
        );
    }
    if reply.posts.is_empty() && reply.employers.is_empty() {
        println!("  no roster entry shown");
    }
    let or_unknown = |text: &str| {
        if text.is_empty() {
            "?".to_string()
        } else {
            text.to_string()
        }
    };
    for post in &reply.posts {
        let contract = if post.contract_open_ended {
            format!("{} – open-ended", or_unknown(&post.contract_start))
        } else {
            format!(
                "{} – {}",
                or_unknown(&post.contract_start),
                or_unknown(&post.contract_end)
            )
        };
        println!(
            "  {} {} ({})  {} {}  hired {}  contract {}{}",
            if post.status_label.is_empty() {
                &post.status
            } else {
                &post.status_label
            },
            or_unknown(&post.unit_name),
            post.unit_code,
            if post.post_category_label.is_empty() {
                &post.post_category
            } else {
                &post.post_category_label
            },
            or_unknown(&post.employment_form),
            or_unknown(&post.hire_date),
            contract,
            if post.left_on.is_empty() {
                String::new()
            } else {
                format!("  left {}", post.left_on)
            },
        );
        if let Some(provenance) = &post.provenance {
            println!("{}", provenance_line(provenance));
        }
    }
    match &reply.latest_payment {
        Some(p) => println!(
            "  latest pay {} from {} ({}): gross {}, net {}",
            p.month,
            or_unknown(&p.unit_name),
            p.unit_code,
            or_unknown(&p.gross),
            or_unknown(&p.net)
        ),
        None if reply.withheld.iter().any(|f| f == "latest_payment") => {}
        None => println!("  no payment on record"),
    }
    if let Some(provenance) = reply
        .latest_payment
        .as_ref()
        .and_then(|p| p.provenance.as_ref())
    {
        println!("{}", provenance_line(provenance));
    }
}
