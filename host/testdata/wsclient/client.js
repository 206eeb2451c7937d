#!/usr/bin/env node
// An independent WebSocket client (the `ws` package, not the Go code under test) that tests
// drive through JSON lines: commands on stdin, events on stdout. Exits after the close.
//
// Usage: node client.js --url URL [--protocol P]... [--header K:V]... [--deflate] [--report-pings]
//
// stdin commands, one JSON object per line (lines sent before the handshake completes are
// queued):
//   {"op":"send","text":"..."}                     one text message
//   {"op":"send","binary":"<base64>"}              one binary message
//   {"op":"sendFragmented","text":"...","parts":N} one message in N frames (continuations);
//   {"op":"sendFragmented","binary":"<b64>","parts":N}  split by bytes, so a text part may
//                                                   end inside a UTF-8 sequence
//   {"op":"ping","data":"..."}
//   {"op":"close","code":N,"reason":"..."}         code and reason are optional
//   {"op":"terminate"}                             drop the TCP connection without a close
// End of stdin while open sends a normal close (1000).
//
// stdout events:
//   {"event":"open","protocol":"...","extensions":"...","headers":{...}}
//   {"event":"message","text":"..."} or {"event":"message","binary":"<base64>"}
//   {"event":"pong","data":"..."}   ({"event":"ping","data":"..."} with --report-pings)
//   {"event":"close","code":N,"reason":"..."}
//   {"event":"error","message":"..."}
//   {"event":"unexpected-response","status":N,"headers":{...},"body":"..."}
//
// permessage-deflate is off unless --deflate is given, so frames on the wire stay readable
// to a proxy that inspects them.
'use strict';

const fs = require('fs');
const readline = require('readline');
const WebSocket = require('ws');

function parseArgs(argv) {
  const a = { url: '', protocols: [], headers: {}, deflate: false, reportPings: false };
  for (let i = 0; i < argv.length; i++) {
    const next = () => {
      if (i + 1 >= argv.length) fail(`${argv[i]} needs a value`);
      return argv[++i];
    };
    switch (argv[i]) {
      case '--url': a.url = next(); break;
      case '--protocol': a.protocols.push(next()); break;
      case '--header': {
        const kv = next();
        const c = kv.indexOf(':');
        if (c <= 0) fail(`bad --header ${JSON.stringify(kv)}, want K:V`);
        a.headers[kv.slice(0, c).trim()] = kv.slice(c + 1).trim();
        break;
      }
      case '--deflate': a.deflate = true; break;
      case '--report-pings': a.reportPings = true; break;
      default: fail(`unknown argument ${JSON.stringify(argv[i])}`);
    }
  }
  if (!a.url) fail('--url is required');
  return a;
}

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

// fail reports a usage error and exits at once.
function fail(message) {
  fs.writeSync(1, JSON.stringify({ event: 'error', message: `wsclient: ${message}` }) + '\n');
  process.exit(2);
}

// exit waits for stdout to drain so the last event is never lost when piped.
function exit(code) {
  process.stdout.write('', () => process.exit(code));
}

// split cuts buf into n byte ranges of nearly equal size; none is empty unless buf is.
function split(buf, n) {
  n = Math.max(1, Math.min(Number(n) | 0, buf.length));
  const parts = [];
  for (let i = 0; i < n; i++) {
    parts.push(buf.subarray(Math.floor((i * buf.length) / n), Math.floor(((i + 1) * buf.length) / n)));
  }
  return parts;
}

const args = parseArgs(process.argv.slice(2));
let ws;
try {
  ws = new WebSocket(args.url, args.protocols, { headers: args.headers, perMessageDeflate: args.deflate });
} catch (err) {
  fail(err.message);
}
let upgradeHeaders = {};
const queue = [];

function run(cmd) {
  switch (cmd.op) {
    case 'send':
      if (cmd.binary !== undefined) ws.send(Buffer.from(cmd.binary, 'base64'), { binary: true });
      else ws.send(String(cmd.text ?? ''));
      break;
    case 'sendFragmented': {
      const binary = cmd.binary !== undefined;
      const data = binary ? Buffer.from(cmd.binary, 'base64') : Buffer.from(String(cmd.text ?? ''), 'utf8');
      const parts = split(data, cmd.parts);
      parts.forEach((p, i) => ws.send(p, { binary, fin: i === parts.length - 1 }));
      break;
    }
    case 'ping': ws.ping(String(cmd.data ?? '')); break;
    case 'close': ws.close(cmd.code, cmd.reason); break;
    case 'terminate': ws.terminate(); break;
    default: throw new Error(`unknown op ${JSON.stringify(cmd.op)}`);
  }
}

function handle(line) {
  if (!line.trim()) return;
  try {
    const cmd = JSON.parse(line);
    if (ws.readyState === WebSocket.CONNECTING) queue.push(cmd);
    else run(cmd);
  } catch (err) {
    emit({ event: 'error', message: `wsclient: ${err.message}` });
  }
}

ws.on('upgrade', (res) => { upgradeHeaders = res.headers; });
ws.on('open', () => {
  emit({ event: 'open', protocol: ws.protocol, extensions: ws.extensions, headers: upgradeHeaders });
  for (const cmd of queue.splice(0)) {
    try { run(cmd); } catch (err) { emit({ event: 'error', message: `wsclient: ${err.message}` }); }
  }
});
ws.on('message', (data, isBinary) => {
  if (isBinary) emit({ event: 'message', binary: data.toString('base64') });
  else emit({ event: 'message', text: data.toString('utf8') });
});
ws.on('ping', (data) => { if (args.reportPings) emit({ event: 'ping', data: data.toString('utf8') }); });
ws.on('pong', (data) => emit({ event: 'pong', data: data.toString('utf8') }));
ws.on('error', (err) => emit({ event: 'error', message: err.message }));
ws.on('close', (code, reason) => {
  emit({ event: 'close', code, reason: reason.toString('utf8') });
  exit(0);
});
// A refused handshake: report the status, headers and body as the client received them.
ws.on('unexpected-response', (req, res) => {
  const chunks = [];
  res.on('data', (c) => chunks.push(c));
  res.on('end', () => {
    emit({ event: 'unexpected-response', status: res.statusCode, headers: res.headers,
      body: Buffer.concat(chunks).toString('utf8') });
    req.destroy();
    exit(0);
  });
});

const rl = readline.createInterface({ input: process.stdin, terminal: false });
rl.on('line', handle);
rl.on('close', () => {
  if (ws.readyState === WebSocket.OPEN) ws.close(1000);
  else if (ws.readyState === WebSocket.CONNECTING) queue.push({ op: 'close', code: 1000 });
});
