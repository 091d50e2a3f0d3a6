'use strict';
// socketd-plugin-node: a socketd plugin in JavaScript. It speaks the same
// protocol as the Go SDK, with nothing from it: go-plugin's handshake line
// on stdout, a gRPC server on a unix socket with the health service,
// go-plugin's controller, stdio and broker services, and the socketd Plugin
// service of sdk/proto/socketd.proto. sdk/PROTOCOL.md says what each piece
// is for; README.md how to run it.
//
// It serves HTTP routes: each answer is a small JSON document saying who
// answered (Node's version and pid), what was asked, over which call, and
// the route's configured message. ?delay=MS waits before answering (up to
// 60 s), to show that a cancelled request reaches the plugin; ?pad=N adds
// N bytes of padding, to show a long answer in several frames.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

// The handshake: what socketd and go-plugin expect (sdk/handshake.go).
const CORE_PROTOCOL_VERSION = 1; // go-plugin's own protocol
const PROTOCOL_VERSION = 1; // socketd's plugin protocol (sdk.ProtocolVersion)
const MAGIC_COOKIE_KEY = 'SOCKETD_PLUGIN';
const MAGIC_COOKIE_VALUE = 'b7f3c1e2-socketd-plugin-protocol';

const NAME = 'node';
const VERSION = '1.0.0';
const DEFAULT_MESSAGE = 'Hello from Node.js';
const CHUNK_SIZE = 64 * 1024; // the largest body chunk in one frame
const EXCHANGE_WINDOW = 4; // answer frames of one request ahead of credit
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

// socketd.proto is read from this repository; a plugin kept elsewhere
// ships a copy of it instead.
const SOCKETD_PROTO = path.join(__dirname, '..', '..', 'sdk', 'proto', 'socketd.proto');

// log writes one JSON line in hclog's format on stderr. go-plugin parses it
// on the core's side and socketd logs it at its level, tagged with the
// plugin's name. stdout carries the handshake only.
function log(level, message, fields = {}) {
  // go-plugin reads exactly six fractional digits.
  const timestamp = new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
  process.stderr.write(JSON.stringify({ '@level': level, '@message': message, '@timestamp': timestamp, ...fields }) + '\n');
}

if (process.env[MAGIC_COOKIE_KEY] !== MAGIC_COOKIE_VALUE) {
  process.stderr.write(`${process.argv[1]} is a socketd plugin (${NAME} ${VERSION}). It is started by socketd, not by hand:\n` +
    `put it in socketd's plugin_dir and declare plugin "${NAME}" {} in config.hcl.\n`);
  process.exit(1);
}

const offered = (process.env.PLUGIN_PROTOCOL_VERSIONS || '').split(',').filter(Boolean).map(Number);
if (offered.length > 0 && !offered.includes(PROTOCOL_VERSION)) {
  // Announce our version anyway: the core refuses it with a message that
  // names both versions.
  log('error', 'socketd does not offer this plugin\'s protocol version', { offered: offered.join(','), speaks: PROTOCOL_VERSION });
}

const loadOptions = { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true };
const socketd = grpc.loadPackageDefinition(protoLoader.loadSync(SOCKETD_PROTO, loadOptions)).socketd.plugin.v1;
const goplugin = grpc.loadPackageDefinition(protoLoader.loadSync(path.join(__dirname, 'proto', 'go-plugin.proto'), loadOptions)).plugin;
const health = grpc.loadPackageDefinition(protoLoader.loadSync(path.join(__dirname, 'proto', 'health.proto'), loadOptions)).grpc.health.v1;

// routes maps a route id ("GET /node") to its decoded config block.
let routes = new Map();
// inFlight counts the requests being answered now: calls overlap freely,
// up to the plugin block's max_concurrency in the core.
let inFlight = 0;

function parseConfig(bytes) {
  return bytes && bytes.length > 0 ? JSON.parse(bytes.toString('utf8')) : {};
}

const pluginService = {
  Describe(call, callback) {
    callback(null, {
      name: NAME,
      version: VERSION,
      protocols: ['PROTOCOL_HTTP'],
      http_exchange: true, // small requests come on one Exchange stream
      plugin_schema: { attributes: [] },
      route_schema: {
        attributes: [{
          name: 'message',
          type: 'string',
          required: false,
          description: 'Text put in every answer of the route.',
          default_json: JSON.stringify(DEFAULT_MESSAGE),
        }],
      },
      listener_schema: { attributes: [] },
    });
  },

  // Configure gets every block as JSON, absent attributes as null, and
  // answers diagnostics; an error keeps socketd from using the config.
  Configure(call, callback) {
    const next = new Map();
    const diagnostics = [];
    for (const r of call.request.routes) {
      const cfg = parseConfig(r.config);
      const message = cfg.message ?? DEFAULT_MESSAGE;
      if (message.trim() === '') {
        diagnostics.push({
          severity: 'SEVERITY_ERROR', route: r.id, path: ['message'],
          summary: 'message is empty', detail: 'Set message to some text, or remove it for the default.',
        });
      }
      next.set(r.id, { message });
    }
    if (diagnostics.length === 0) {
      routes = next;
    }
    callback(null, { diagnostics });
  },

  // ServeHTTP: the core sends the request head in the first frame, then
  // body chunks, the last with end set; the answer is a head, then body
  // chunks, the last with end set.
  ServeHTTP(call) {
    let head = null;
    let state = 'reading'; // then 'waiting' (for ?delay), then 'done'
    let timer = null;
    const body = [];
    const finish = () => {
      if (state !== 'reading') return;
      state = 'waiting';
      inFlight++;
      const url = new URL(head.target || '/', 'http://socketd.invalid');
      const delay = Math.min(Number(url.searchParams.get('delay')) || 0, 60000);
      timer = setTimeout(() => {
        state = 'done';
        // in_flight counts this one.
        for (const frame of answerFrames(head, Buffer.concat(body), 'ServeHTTP')) call.write(frame);
        call.end();
        inFlight--;
      }, delay);
    };
    call.on('data', (frame) => {
      if (head === null) {
        head = frame.head;
        if (!head) {
          state = 'done';
          call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: 'first frame carries no request head' });
          return;
        }
      }
      if (frame.body && frame.body.length > 0) body.push(frame.body);
      if (frame.end) finish();
    });
    call.on('end', () => { if (head) finish(); });
    // The client went away or the route's timeout passed before the
    // answer: stop working on it. (The core also cancels a call it has
    // read to the end; that is no news.)
    call.on('cancelled', () => {
      if (state === 'done') return;
      if (state === 'waiting') inFlight--;
      state = 'done';
      clearTimeout(timer);
      log('info', 'request cancelled', { route: head ? head.route : '' });
    });
  },
  // Exchange carries the requests whose whole body fits in one frame, many
  // at once on one long-lived stream: each frame is tagged with its
  // request's id. Answer frames of one id go out at most EXCHANGE_WINDOW
  // ahead of the core's credit (one per frame it passed on), so a slow
  // client holds back its own answer only; cancel means the client went
  // away or the route timed out.
  Exchange(call) {
    const requests = new Map(); // id -> { timer, queue, credit, route }
    const drain = (id, r) => {
      while (r.queue.length > 0 && r.credit > 0) {
        r.credit--;
        call.write({ id, response: r.queue.shift() });
      }
      if (r.queue.length === 0 && r.answered) requests.delete(id);
    };
    call.on('data', (frame) => {
      const id = frame.id;
      if (frame.request) {
        const head = frame.request.head;
        if (!head) {
          call.write({ id, response: { head: { status: 400, headers: [] }, end: true } });
          return;
        }
        const url = new URL(head.target || '/', 'http://socketd.invalid');
        const delay = Math.min(Number(url.searchParams.get('delay')) || 0, 60000);
        const r = { queue: [], credit: EXCHANGE_WINDOW, answered: false, route: head.route };
        inFlight++;
        r.timer = setTimeout(() => {
          r.answered = true;
          r.queue = answerFrames(head, frame.request.body || Buffer.alloc(0), 'Exchange');
          inFlight--;
          drain(id, r);
        }, delay);
        requests.set(id, r);
      } else if (frame.cancel) {
        const r = requests.get(id);
        if (!r) return; // answered already: no news
        requests.delete(id);
        if (!r.answered) {
          clearTimeout(r.timer);
          inFlight--;
          log('info', 'request cancelled', { route: r.route });
        }
      } else if (frame.credit > 0) {
        const r = requests.get(id);
        if (r) {
          r.credit = Math.min(r.credit + frame.credit, EXCHANGE_WINDOW);
          drain(id, r);
        }
      }
    });
    // The core closed its side (it is stopping) or went away: drop all.
    const stop = () => {
      for (const r of requests.values()) {
        if (!r.answered) {
          clearTimeout(r.timer);
          inFlight--;
        }
      }
      requests.clear();
    };
    call.on('end', () => { stop(); call.end(); });
    call.on('cancelled', stop);
    call.on('error', stop); // the connection broke
  },
  // ServeStream and ServeDatagram are not implemented: grpc-js answers
  // UNIMPLEMENTED, and Describe does not claim them, so socketd never
  // routes a tcp or udp listener here.
};

// answerFrames is the answer to one request as response frames: the head
// with the first chunk, then chunks of at most CHUNK_SIZE, the last with
// end set. via names the call that carried the request.
function answerFrames(head, requestBody, via) {
  const route = routes.get(head.route) || { message: DEFAULT_MESSAGE };
  const url = new URL(head.target || '/', 'http://socketd.invalid');
  const pad = Math.min(Number(url.searchParams.get('pad')) || 0, 16 * 1024 * 1024);
  const doc = {
    plugin: NAME,
    runtime: `node ${process.version}`,
    pid: process.pid,
    message: route.message,
    method: head.method,
    path: head.path,
    query: Object.fromEntries(url.searchParams),
    route: head.route,
    listener: head.listener,
    path_values: head.path_values,
    remote_addr: head.remote_addr,
    tls: head.tls,
    body_bytes: requestBody.length,
    in_flight: inFlight,
    via,
    pad: '.'.repeat(pad),
  };
  const bytes = Buffer.from(JSON.stringify(doc, null, 2) + '\n');
  const headers = [
    { name: 'Content-Type', values: ['application/json'] },
    { name: 'Content-Length', values: [String(bytes.length)] },
    { name: 'Cache-Control', values: ['no-store'] },
  ];
  // The head travels with the first chunk; a small answer is one frame.
  const frames = [];
  for (let off = 0; off === 0 || off < bytes.length; off += CHUNK_SIZE) {
    const chunk = bytes.subarray(off, off + CHUNK_SIZE);
    const frame = { body: chunk, end: off + CHUNK_SIZE >= bytes.length };
    if (off === 0) frame.head = { status: 200, headers };
    frames.push(frame);
  }
  return frames;
}

// go-plugin's host checks the health service for "plugin" (and "" means
// the whole server).
const healthService = {
  Check(call, callback) {
    const service = call.request.service;
    if (service === '' || service === 'plugin') {
      callback(null, { status: 'SERVING' });
    } else {
      callback({ code: grpc.status.NOT_FOUND, details: `unknown service ${service}` });
    }
  },
};

const server = new grpc.Server({
  'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
  'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
});

const controllerService = {
  Shutdown(call, callback) {
    callback(null, {});
    setImmediate(() => shutdown(0));
  },
};

// The host opens these two streams at once after connecting; they stay
// open and silent until the connection ends.
const stdioService = { StreamStdio(call) { call.on('cancelled', () => call.end()); } };
const brokerService = {
  StartStream(call) {
    call.on('data', () => {});
    call.on('end', () => call.end());
  },
};

server.addService(socketd.Plugin.service, pluginService);
server.addService(health.Health.service, healthService);
server.addService(goplugin.GRPCController.service, controllerService);
server.addService(goplugin.GRPCStdio.service, stdioService);
server.addService(goplugin.GRPCBroker.service, brokerService);

// The socket lives in PLUGIN_UNIX_SOCKET_DIR when the host names one,
// else in the temporary directory, as go-plugin's Go servers do.
const socketDir = process.env.PLUGIN_UNIX_SOCKET_DIR || os.tmpdir();
const socketPath = path.join(socketDir, `plugin-${crypto.randomBytes(6).toString('hex')}.sock`);

function shutdown(code) {
  server.forceShutdown();
  fs.rmSync(socketPath, { force: true });
  process.exit(code);
}

server.bindAsync(`unix:${socketPath}`, grpc.ServerCredentials.createInsecure(), (err) => {
  if (err) {
    log('error', 'cannot listen', { socket: socketPath, error: err.message });
    process.exit(1);
  }
  // The handshake line: CORE-PROTOCOL-VERSION|APP-PROTOCOL-VERSION|
  // NETWORK-TYPE|NETWORK-ADDR|PROTOCOL. Nothing else may go to stdout.
  process.stdout.write(`${CORE_PROTOCOL_VERSION}|${PROTOCOL_VERSION}|unix|${socketPath}|grpc\n`);
  log('info', 'plugin listening', { socket: socketPath, node: process.version });
});

// Ctrl-C in a terminal reaches the whole process group; the core decides
// when plugins stop (as go-plugin's Go servers do), so SIGINT is ignored.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => shutdown(0));

// End with the core even if it was killed and could not say goodbye.
const parent = process.ppid;
setInterval(() => { if (process.ppid !== parent) shutdown(0); }, 250).unref();
