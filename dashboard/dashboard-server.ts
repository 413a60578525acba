import { createHash, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join } from 'node:path';
import { WaterbearError, isWaterbearError } from '../libos-host/errors.js';
import { parseListenUri } from '../libos-host/platform/listen-address.js';
import { packageFile } from '../libos-host/platform/package-files.js';
import type { ClusterConfig } from '../replica/config/cluster-config.js';
import type { Logger } from '../replica/log.js';
import { FORWARDED_HEADER, httpStatusOf, validateActionArgs, type ActionRunner } from './actions.js';
import type { ClusterMonitor } from './cluster-monitor.js';
import { guestInfo, type StaticGuestInfo } from './guest-info.js';
import { inSyncHealth, primaryHealth, type HealthSubject } from './health.js';
import { ACTIONS, type ActionName, type DashboardState, type TimelineKind } from './model.js';

/** Largest request body accepted (actions and events are small JSON objects). */
export const MAX_BODY_BYTES = 64 * 1024;
/** Live-update (SSE) connections served at once. */
export const MAX_STREAM_CLIENTS = 64;
/** A comment line keeps idle SSE connections open through proxies. */
export const STREAM_KEEPALIVE_MS = 15_000;
/** Browsers reconnect a dropped stream after this long. */
export const STREAM_RETRY_MS = 1000;
/** Longest message of an event posted to /api/events. */
export const MAX_EVENT_MESSAGE_CHARS = 1000;
/** Kinds an external tool (the chaos harness, scripts) may post to /api/events. */
export const POSTABLE_EVENT_KINDS: readonly TimelineKind[] = ['fault', 'admin'];
/** Where `npm run build` puts the UI bundle. */
export const PUBLIC_DIR = 'dist/dashboard/public';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.map': 'application/json', '.svg': 'image/svg+xml', '.png': 'image/png',
};

export interface DashboardServerOptions {
  /** host:port to listen on (port 0: any free port). */
  listen: string;
  config: ClusterConfig;
  monitor: ClusterMonitor;
  guest: StaticGuestInfo;
  /** Actions need `Authorization: Bearer <token>`; null disables them (403). */
  adminToken: string | null;
  actions: ActionRunner;
  /** The Prometheus text for /metrics. */
  metrics: () => Promise<{ contentType: string; body: string }>;
  health: () => HealthSubject;
  log: Logger;
  /** Called after every action (for metrics). */
  onAction?: (name: ActionName, ok: boolean) => void;
  /** Folder of the built UI (default dist/dashboard/public in the package). */
  publicDir?: string;
}

class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) { super(message); }
}

function digest(s: string): Buffer { return createHash('sha256').update(s).digest(); }

/**
 * The dashboard's HTTP server: the UI (static files), the JSON API, live updates as Server-Sent
 * Events, operator actions behind the admin token, /metrics and the health endpoints.
 * Every route is documented in docs/dashboard.md.
 */
export class DashboardServer {
  private readonly server: http.Server;
  private readonly streams = new Set<http.ServerResponse>();
  private readonly unsubscribe: Array<() => void> = [];
  private keepalive: NodeJS.Timeout | null = null;
  private readonly publicDir: string;
  private readonly tokenDigest: Buffer | null;

  constructor(private readonly o: DashboardServerOptions) {
    this.publicDir = o.publicDir ?? packageFile(PUBLIC_DIR);
    this.tokenDigest = o.adminToken === null || o.adminToken === '' ? null : digest(o.adminToken);
    this.server = http.createServer((req, res) => { void this.handle(req, res); });
  }

  /** Listen; resolves with the dashboard's URL. Throws WB_LISTEN_FAILED when the address is taken. */
  async start(): Promise<string> {
    const { host, port } = parseListenUri(this.o.listen);
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', (err: NodeJS.ErrnoException) => reject(new WaterbearError('WB_LISTEN_FAILED',
        `dashboard: cannot listen on ${this.o.listen}: ${err.code ?? err.message}; choose another address (cluster file "dashboard:" or --listen)`, { cause: err })));
      this.server.listen({ host, port }, () => resolve());
    });
    this.broadcastFrom('cluster', 'cluster');
    this.broadcastFrom('timeline', 'timeline');
    this.broadcastFrom('sample', 'sample');
    this.keepalive = setInterval(() => { for (const s of this.streams) s.write(': keepalive\n\n'); }, STREAM_KEEPALIVE_MS);
    this.keepalive.unref();
    return this.url;
  }

  /** http://host:port/ of the running server. */
  get url(): string {
    const a = this.server.address() as AddressInfo;
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    return `http://${host}:${a.port}/`;
  }

  async stop(): Promise<void> {
    for (const u of this.unsubscribe) u();
    if (this.keepalive !== null) clearInterval(this.keepalive);
    for (const s of this.streams) s.end();
    this.streams.clear();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections(); // keep-alive and stream connections would hold close() open
    await closed;
  }

  /** Relay a monitor event to every live stream, serialized once. */
  private broadcastFrom(event: 'cluster' | 'timeline' | 'sample', name: string): void {
    const f = (data: unknown): void => {
      if (this.streams.size === 0) return;
      const msg = `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
      for (const s of this.streams) s.write(msg);
    };
    this.o.monitor.on(event, f);
    this.unsubscribe.push(() => this.o.monitor.off(event, f));
  }

  private fullState(): DashboardState {
    const m = this.o.monitor;
    const cluster = m.state();
    return { cluster, guest: guestInfo(this.o.guest, cluster), timeline: m.timeline(), series: m.series() };
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://dashboard');
    const path = url.pathname;
    try {
      if (req.method === 'GET' || req.method === 'HEAD') {
        switch (path) {
          case '/api/state': return this.json(res, 200, this.fullState());
          case '/api/cluster': return this.json(res, 200, this.o.monitor.state());
          case '/api/timeline': return this.json(res, 200, this.o.monitor.timeline(Number(url.searchParams.get('since') ?? 0) || 0));
          case '/api/series': return this.json(res, 200, this.o.monitor.series());
          case '/api/guest': return this.json(res, 200, guestInfo(this.o.guest, this.o.monitor.state()));
          case '/api/stream': return this.stream(req, res);
          case '/metrics': {
            const m = await this.o.metrics();
            res.writeHead(200, { 'content-type': m.contentType, 'cache-control': 'no-store' });
            res.end(m.body);
            return;
          }
          case '/health/primary': {
            const h = primaryHealth(this.o.monitor.state(), this.o.health());
            return this.json(res, h.status, h.body);
          }
          case '/health/in-sync': {
            const b = this.o.monitor.inSyncBounds;
            const ms = url.searchParams.get('maxLagMs');
            const ep = url.searchParams.get('maxLagEpochs');
            const bounds = { maxLagMs: ms !== null && Number(ms) >= 0 ? Number(ms) : b.maxLagMs, maxLagEpochs: ep !== null && Number(ep) >= 0 ? Number(ep) : b.maxLagEpochs };
            const h = inSyncHealth(this.o.monitor.state(), this.o.health(), bounds);
            return this.json(res, h.status, h.body);
          }
          default: return this.staticFile(path, res);
        }
      }
      if (req.method === 'POST') {
        if (path.startsWith('/api/actions/')) return await this.action(path.slice('/api/actions/'.length), req, res);
        if (path === '/api/events') return await this.postEvent(req, res);
        if (path === '/api/admin/check') return this.checkToken(req, res);
      }
      throw new HttpError(req.method === 'GET' || req.method === 'POST' ? 404 : 405, 'WB_BAD_REQUEST', `no route ${req.method} ${path}; see docs/dashboard.md`);
    } catch (err) {
      if (err instanceof HttpError) return this.json(res, err.status, { error: { code: err.code, message: err.message } });
      if (isWaterbearError(err)) return this.json(res, Number(err.details?.httpStatus ?? httpStatusOf(err.code)), { error: { code: err.code, message: err.message } });
      this.o.log.error({ err: (err as Error).message, path }, 'dashboard request failed');
      return this.json(res, 500, { error: { code: 'WB_INTERNAL', message: (err as Error).message } });
    }
  }

  private json(res: http.ServerResponse, status: number, body: unknown): void {
    if (res.headersSent) { res.end(); return; }
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
  }

  private stream(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (this.streams.size >= MAX_STREAM_CLIENTS) throw new HttpError(503, 'WB_BAD_REQUEST', `too many live streams (${MAX_STREAM_CLIENTS}); close some dashboards`);
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.write(`retry: ${STREAM_RETRY_MS}\n\nevent: state\ndata: ${JSON.stringify(this.fullState())}\n\n`);
    this.streams.add(res);
    req.socket.setNoDelay(true);
    const done = (): void => { this.streams.delete(res); };
    req.on('close', done);
    res.on('error', done);
  }

  /** Checks the bearer token. Throws 403 when actions are disabled, 401 when the token is missing or wrong. */
  private authorize(req: http.IncomingMessage): string {
    if (this.tokenDigest === null) {
      throw new WaterbearError('WB_ADMIN_DISABLED', 'actions are disabled on this dashboard: start it with --admin-token (or set WATERBEAR_ADMIN_TOKEN)');
    }
    const h = req.headers.authorization ?? '';
    const m = /^Bearer\s+(.+)$/i.exec(h);
    if (m === null || !timingSafeEqual(digest(m[1].trim()), this.tokenDigest)) {
      throw new WaterbearError('WB_UNAUTHORIZED', m === null ? 'actions need the admin token: send "Authorization: Bearer <token>"' : 'wrong admin token');
    }
    return h;
  }

  private async readJson(req: http.IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of req) {
      n += (c as Buffer).length;
      if (n > MAX_BODY_BYTES) throw new WaterbearError('WB_BAD_REQUEST', `request body over ${MAX_BODY_BYTES} bytes`);
      chunks.push(c as Buffer);
    }
    const text = Buffer.concat(chunks).toString('utf8').trim();
    if (text === '') return {};
    try {
      return JSON.parse(text);
    } catch {
      throw new WaterbearError('WB_BAD_REQUEST', 'the body is not valid JSON');
    }
  }

  /** POST /api/admin/check: the page asks as soon as it has a token, so a wrong one is said before the first action. */
  private checkToken(req: http.IncomingMessage, res: http.ServerResponse): void {
    try {
      this.authorize(req);
    } catch (err) {
      if ((err as WaterbearError).code === 'WB_UNAUTHORIZED') this.o.log.warn({ remote: req.socket.remoteAddress }, 'admin token refused (token check)');
      throw err;
    }
    this.json(res, 200, { ok: true });
  }

  private async action(name: string, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (!(ACTIONS as readonly string[]).includes(name)) throw new HttpError(404, 'WB_BAD_REQUEST', `no action "${name}" (actions: ${ACTIONS.join(', ')})`);
    const action = name as ActionName;
    const remote = req.socket.remoteAddress;
    let authorization: string;
    try {
      authorization = this.authorize(req);
    } catch (err) {
      this.o.log.warn({ action, remote, code: (err as WaterbearError).code }, 'operator action refused');
      this.o.onAction?.(action, false);
      throw err;
    }
    const args = validateActionArgs(action, await this.readJson(req), this.o.config);
    const forwarded = req.headers[FORWARDED_HEADER] === '1';
    const what = `${action}${args.target !== undefined ? ` to ${args.target}` : ''}${args.replica !== undefined ? ` ${args.replica}` : ''}`;
    this.o.log.warn({ action, args, remote, forwarded }, `operator action: ${what}`);
    if (!forwarded) this.o.monitor.addEvent('admin', `operator requested ${what}`, 'dashboard');
    try {
      const result = await this.o.actions.run(action, args, { authorization, forwarded });
      this.o.log.warn({ action, args, result }, `operator action done: ${what}`);
      if (!forwarded) this.o.monitor.addEvent('admin', `${what}: done ${JSON.stringify(result)}`, 'dashboard');
      this.o.onAction?.(action, true);
      return this.json(res, 200, { ok: true, action, result });
    } catch (err) {
      const code = isWaterbearError(err) ? err.code : 'WB_INTERNAL';
      this.o.log.warn({ action, args, code, err: (err as Error).message }, `operator action failed: ${what}`);
      if (!forwarded) this.o.monitor.addEvent('admin', `${what} failed: ${(err as Error).message} [${code}]`, 'dashboard');
      this.o.onAction?.(action, false);
      throw err;
    }
  }

  /** POST /api/events: an external tool (the chaos harness, a script) adds to the timeline. */
  private async postEvent(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    this.authorize(req);
    const b = await this.readJson(req) as { kind?: unknown; message?: unknown; source?: unknown; replica?: unknown };
    const kind = (b.kind ?? 'fault') as TimelineKind;
    if (!POSTABLE_EVENT_KINDS.includes(kind)) throw new WaterbearError('WB_BAD_REQUEST', `"kind" must be one of ${POSTABLE_EVENT_KINDS.join(', ')}: got ${JSON.stringify(b.kind)}`);
    if (typeof b.message !== 'string' || b.message === '' || b.message.length > MAX_EVENT_MESSAGE_CHARS) {
      throw new WaterbearError('WB_BAD_REQUEST', `"message" must be a non-empty string of at most ${MAX_EVENT_MESSAGE_CHARS} characters`);
    }
    const source = typeof b.source === 'string' && b.source !== '' ? b.source.slice(0, 64) : 'external';
    const e = this.o.monitor.addEvent(kind, b.message, source, typeof b.replica === 'string' ? { replica: b.replica.slice(0, 64) } : {});
    this.json(res, 200, { ok: true, event: e });
  }

  private staticFile(path: string, res: http.ServerResponse): void {
    const name = path === '/' ? 'index.html' : path.slice(1);
    if (!/^[A-Za-z0-9._-]+$/.test(name) || name.startsWith('.')) throw new HttpError(404, 'WB_BAD_REQUEST', `no such file ${path}`);
    const file = join(this.publicDir, name);
    if (!existsSync(file)) {
      if (name === 'index.html') {
        throw new HttpError(500, 'WB_CONFIG_INVALID', `the dashboard UI is not built (${file} is missing): run \`npm run build\` in the waterbear folder; the JSON API works without it`);
      }
      throw new HttpError(404, 'WB_BAD_REQUEST', `no such file ${path}`);
    }
    res.writeHead(200, { 'content-type': CONTENT_TYPES[extname(name)] ?? 'application/octet-stream', 'cache-control': 'no-cache' });
    res.end(readFileSync(file));
  }
}
