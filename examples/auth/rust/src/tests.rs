use super::*;
use sluice::testing::{self, LocalReply};

const SECRET: &str = "s3cret";
const NOW: i64 = 1_700_000_000;
const BASE_CONFIG: &str = r#"{"tokens": ["demo-token"], "static_user": "demo", "jwt_secret": "s3cret", "leeway": "30s"}"#;

/// Signs `claims` (a JSON object) with HS256, or the header's `alg`, under
/// `key`.
fn jwt(alg: &str, key: &str, claims: &str) -> String {
    jwt_head(&format!(r#"{{"alg":"{}","typ":"JWT"}}"#, alg), key, claims)
}

/// Signs `claims` under `key` with HMAC-SHA256, whatever `head` says.
fn jwt_head(head: &str, key: &str, claims: &str) -> String {
    let signed = format!(
        "{}.{}",
        base64::encode_url(head.as_bytes()),
        base64::encode_url(claims.as_bytes())
    );
    let mac = crypto::hmac_sha256(key.as_bytes(), signed.as_bytes());
    format!("{}.{}", signed, base64::encode_url(&mac))
}

fn host(config: &str) -> Auth {
    let f: Auth = testing::configure(config).unwrap_or_else(|e| panic!("{}", e));
    testing::with(|h| h.wall_nanos = NOW * 1_000_000_000);
    f
}

/// Runs the hook; the reply when refused.
fn run(f: &Auth) -> Option<LocalReply> {
    let action = testing::on_request_headers(f);
    let reply = testing::with(|h| h.local_response.take());
    assert_eq!(action == sluice::abi::ACTION_RESPOND, reply.is_some());
    reply
}

fn check_denied(r: &LocalReply, why: &str) {
    assert_eq!(r.status, 401);
    assert_eq!(
        r.headers.get("WWW-Authenticate"),
        Some(r#"Bearer realm="sluice", error="invalid_token""#)
    );
    assert_eq!(r.headers.get("Content-Type"), Some("application/json"));
    assert_eq!(r.headers.get("Cache-Control"), Some("no-store"));
    assert_eq!(
        r.text(),
        format!(r#"{{"error":"invalid_token","error_description":"{}"}}"#, why)
    );
}

#[test]
fn http() {
    let exp = |d: i64| (NOW + d).to_string();
    let cases: Vec<(&str, String, &str, &str)> = vec![
        ("no header", "".into(), "", "missing bearer token"),
        ("basic scheme", "Basic ZGVtbzpkZW1v".into(), "", "missing bearer token"),
        ("static token", "Bearer demo-token".into(), "demo", ""),
        ("scheme is case-insensitive", "bearer demo-token".into(), "demo", ""),
        ("unknown token", "Bearer nope".into(), "", "invalid token"),
        ("jwt", format!("Bearer {}", jwt("HS256", SECRET, &format!(r#"{{"exp":{},"sub":"alice"}}"#, exp(3600)))), "alice", ""),
        ("jwt without exp", format!("Bearer {}", jwt("HS256", SECRET, r#"{"sub":"bob"}"#)), "bob", ""),
        ("jwt expired", format!("Bearer {}", jwt("HS256", SECRET, &format!(r#"{{"exp":{},"sub":"alice"}}"#, exp(-60)))), "", "token expired"),
        ("jwt expired within leeway", format!("Bearer {}", jwt("HS256", SECRET, &format!(r#"{{"exp":{},"sub":"alice"}}"#, exp(-20)))), "alice", ""),
        ("jwt not yet valid", format!("Bearer {}", jwt("HS256", SECRET, &format!(r#"{{"nbf":{},"sub":"alice"}}"#, exp(60)))), "", "token not valid yet"),
        ("jwt nbf within leeway", format!("Bearer {}", jwt("HS256", SECRET, &format!(r#"{{"nbf":{},"sub":"alice"}}"#, exp(10)))), "alice", ""),
        ("jwt wrong key", format!("Bearer {}", jwt("HS256", "other", r#"{"sub":"alice"}"#)), "", "bad JWT signature"),
        ("jwt alg none", format!("Bearer {}", jwt("none", SECRET, r#"{"sub":"alice"}"#)), "", "unsupported JWT algorithm"),
        ("jwt no subject", format!("Bearer {}", jwt("HS256", SECRET, &format!(r#"{{"exp":{}}}"#, exp(3600)))), "", "token has no subject"),
        ("jwt garbage", "Bearer a.b.c".into(), "", "invalid token"),
        ("jwt subject with a newline", format!("Bearer {}", jwt("HS256", SECRET, r#"{"sub":"a\nb"}"#)), "", "token subject is not a valid header value"),
        ("jwt exp not a number", format!("Bearer {}", jwt("HS256", SECRET, r#"{"sub":"a","exp":"soon"}"#)), "", "invalid token"),
        ("jwt claims not an object", format!("Bearer {}", jwt("HS256", SECRET, r#"["sub"]"#)), "", "invalid token"),
        ("jwt claim names are exact", format!("Bearer {}", jwt("HS256", SECRET, r#"{"SUB":"erin"}"#)), "", "token has no subject"),
        ("jwt sub not a string", format!("Bearer {}", jwt("HS256", SECRET, r#"{"sub":5}"#)), "", "token has no subject"),
        ("jwt claims null", format!("Bearer {}", jwt("HS256", SECRET, "null")), "", "invalid token"),
        ("jwt no subject wins over expiry", format!("Bearer {}", jwt("HS256", SECRET, &format!(r#"{{"exp":{}}}"#, exp(-3600)))), "", "token has no subject"),
        ("jwt nbf null", format!("Bearer {}", jwt("HS256", SECRET, r#"{"sub":"a","nbf":null}"#)), "", "invalid token"),
        ("jwt alg not a string", format!("Bearer {}", jwt_head(r#"{"alg":1}"#, SECRET, r#"{"sub":"a"}"#)), "", "unsupported JWT algorithm"),
        ("jwt repeated claim: the last counts", format!("Bearer {}", jwt("HS256", SECRET, r#"{"sub":"a","sub":"b"}"#)), "b", ""),
        ("jwt nested 64 deep", format!("Bearer {}", jwt("HS256", SECRET, &format!(r#"{{"sub":"a","x":{}1{}}}"#, "[".repeat(63), "]".repeat(63)))), "a", ""),
        ("jwt nested 65 deep", format!("Bearer {}", jwt("HS256", SECRET, &format!(r#"{{"sub":"a","x":{}1{}}}"#, "[".repeat(64), "]".repeat(64)))), "", "invalid token"),
    ];
    for (name, auth, user, why) in cases {
        let f = host(BASE_CONFIG);
        testing::with(|h| {
            if !auth.is_empty() {
                h.request_headers.set("Authorization", &auth);
            }
        });
        let r = run(&f);
        if user.is_empty() {
            check_denied(r.as_ref().unwrap_or_else(|| panic!("{}: let through", name)), why);
            continue;
        }
        assert!(r.is_none(), "{}: refused: {:?}", name, r.map(|r| r.text()));
        testing::with(|h| {
            assert_eq!(h.request_headers.get("X-User"), Some(user), "{}", name);
            assert_eq!(h.request_headers.get("Authorization"), None, "{}: credential forwarded", name);
        });
    }
}

fn upgrade_host(config: &str) -> Auth {
    let f = host(config);
    testing::with(|h| {
        h.path = "/ws/chat".into();
        h.request_headers.set("Connection", "Upgrade");
        h.request_headers.set("Upgrade", "websocket");
        h.request_headers.set("Sec-WebSocket-Version", "13");
    });
    f
}

#[test]
fn websocket_query_token() {
    let f = upgrade_host(BASE_CONFIG);
    let token = jwt("HS256", SECRET, r#"{"sub":"carol"}"#);
    testing::with(|h| h.query = format!("room=1&access_token={}&x=%20y", token));
    assert!(run(&f).is_none());
    testing::with(|h| {
        assert_eq!(h.query, "room=1&x=%20y", "the token stripped and the rest kept");
        assert_eq!(h.request_headers.get("X-User"), Some("carol"));
    });
}

#[test]
fn query_token_is_for_websockets_only() {
    let f = host(BASE_CONFIG);
    testing::with(|h| h.query = "access_token=demo-token".into());
    check_denied(&run(&f).expect("a plain HTTP request was let in with a query token"), "missing bearer token");
}

#[test]
fn websocket_subprotocol_token() {
    for (offered, forwarded) in [
        ("bearer.demo-token, chat.v1", Some("chat.v1")),
        ("chat.v2, chat.v1, bearer.demo-token", Some("chat.v2, chat.v1")),
        ("bearer.demo-token", None),
    ] {
        let f = upgrade_host(BASE_CONFIG);
        testing::with(|h| h.request_headers.set("Sec-WebSocket-Protocol", offered));
        assert!(run(&f).is_none(), "{}: refused", offered);
        testing::with(|h| {
            assert_eq!(h.request_headers.get("Sec-WebSocket-Protocol"), forwarded, "{}", offered);
            assert_eq!(h.request_headers.get("X-User"), Some("demo"));
        });
    }
}

#[test]
fn websocket_without_token() {
    let f = upgrade_host(BASE_CONFIG);
    testing::with(|h| h.request_headers.set("Sec-WebSocket-Protocol", "chat.v1, bearer.wrong"));
    check_denied(&run(&f).expect("let through"), "invalid token");
}

#[test]
fn carriers_can_be_turned_off() {
    let f = upgrade_host(r#"{"tokens": ["demo-token"], "query_param": "", "subprotocol_prefix": ""}"#);
    testing::with(|h| {
        h.query = "access_token=demo-token".into();
        h.request_headers.set("Sec-WebSocket-Protocol", "bearer.demo-token");
    });
    assert!(run(&f).is_some(), "token accepted from a carrier that is off");

    let f = upgrade_host(r#"{"tokens": ["demo-token"], "query_param": "token", "subprotocol_prefix": "auth-"}"#);
    testing::with(|h| h.request_headers.set("Sec-WebSocket-Protocol", "auth-demo-token, chat"));
    assert!(run(&f).is_none(), "custom prefix refused");
}

#[test]
fn config_errors() {
    for (name, cfg) in [
        ("nothing to check", "{}"),
        ("empty token", r#"{"tokens": [""]}"#),
        ("bad leeway", r#"{"jwt_secret": "x", "leeway": "soon"}"#),
        ("negative leeway", r#"{"jwt_secret": "x", "leeway": -1}"#),
        ("quote in realm", r#"{"jwt_secret": "x", "realm": "a\"b"}"#),
        ("not json", "["),
        ("tokens not a list", r#"{"tokens": "demo-token"}"#),
        ("leeway a bool", r#"{"jwt_secret": "x", "leeway": true}"#),
        ("leeway null", r#"{"jwt_secret": "x", "leeway": null}"#),
        ("unknown key", r#"{"token": ["a"]}"#),
        ("bad user header", r#"{"tokens": ["a"], "user_header": "X User"}"#),
        ("empty user header", r#"{"tokens": ["a"], "user_header": ""}"#),
        ("null token", r#"{"tokens": [null]}"#),
        ("keys are exact", r#"{"Tokens": ["a"]}"#),
    ] {
        match testing::configure::<Auth>(cfg) {
            Ok(_) => panic!("{}: config accepted", name),
            Err(e) => assert!(e.message().starts_with("auth: config"), "{}: {}", name, e),
        }
    }
}

#[test]
fn leeway_in_seconds() {
    let f = host(r#"{"jwt_secret": "s3cret", "leeway": 90}"#);
    let token = jwt("HS256", SECRET, &format!(r#"{{"sub":"dave","exp":{}}}"#, NOW - 60));
    testing::with(|h| h.request_headers.set("Authorization", &format!("Bearer {}", token)));
    assert!(run(&f).is_none(), "refused within a 90 s leeway");
}

#[test]
fn custom_realm_and_user_header() {
    let f = host(r#"{"tokens": ["t"], "realm": "api", "user_header": "X-Auth-User", "static_user": "svc"}"#);
    testing::with(|h| h.request_headers.set("Authorization", "Bearer t"));
    assert!(run(&f).is_none());
    testing::with(|h| assert_eq!(h.request_headers.get("X-Auth-User"), Some("svc")));
    testing::with(|h| h.request_headers.set("Authorization", "Bearer u"));
    let r = run(&f).expect("refused");
    assert_eq!(r.headers.get("WWW-Authenticate"), Some(r#"Bearer realm="api", error="invalid_token""#));
}

#[test]
fn query_helpers_match_go() {
    assert_eq!(remove_param("a=1&&t=2&b&", "t"), "a=1&&b");
    assert_eq!(remove_param("&t=1&b=2", "t"), "b=2");
    assert_eq!(remove_param("t=1", "t"), "");
    assert_eq!(remove_param("", "t"), "");
    assert_eq!(query_token("t=a%2Bb+c&t=x", "t"), Some(b"a+b c".to_vec()));
    assert_eq!(query_token("t=&t=x", "t"), None, "the first occurrence counts");
    assert_eq!(query_token("t=%zz", "t"), None);
    assert_eq!(query_token("t%3D=x", "t"), None, "keys are compared raw");
    assert_eq!(bearer("Bearer   tok  "), Some(b"tok".to_vec()));
    assert_eq!(bearer("Bearer "), None);
    assert_eq!(bearer("Bearer\u{e9}x"), None);
}

#[test]
fn hooks() {
    let f = host(BASE_CONFIG);
    assert_eq!(testing::hooks(&f), Hooks::REQUEST_HEADERS);
}

#[test]
fn cached_jwt_times_are_checked_on_every_request() {
    let f = host(BASE_CONFIG);
    let token = jwt("HS256", SECRET, &format!(r#"{{"exp":{},"sub":"alice"}}"#, NOW + 60));
    assert_eq!(f.validate(token.as_bytes(), NOW * 1_000_000_000), Ok("alice".to_string()));
    assert_eq!(f.verified.borrow().len(), 1, "the verified token is cached");
    // The same token, now past exp and the 30s leeway.
    assert_eq!(f.validate(token.as_bytes(), (NOW + 120) * 1_000_000_000), Err("token expired"));
    // A token that fails verification is not cached.
    assert!(f.validate(b"a.b.c", NOW * 1_000_000_000).is_err());
    assert_eq!(f.verified.borrow().len(), 1);
}
