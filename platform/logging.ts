/**
 * How every moleshop node logs: Moleculer's own logger, in one of two looks.
 *
 * - json (production): Moleculer's Pino logger, one JSON object per line.
 * - text (development): Moleculer's Console logger with today's short look
 *   (`[time] LEVEL MODULE: message`), plus the node and the request id before the module.
 *
 * Either way each line carries the node and module (Moleculer's bindings: `nodeID`, `mod`,
 * `svc`) and, inside a call, `requestId`, `traceId` (Moleculer's trace id is the request id)
 * and `spanId` (the context id), taken from the RequestScope middleware. Levels may differ per
 * module (LOG_LEVELS). Every argument passes one scrubber first, so passwords, their hashes,
 * JWTs, the JWT secret and card tokens never reach a line, whichever format is on.
 */
import type { BrokerOptions } from "moleculer";
import type { Config, LogFormat, LogLevel } from "./config";
import { currentRequest } from "./middlewares/request-scope";

export interface LoggingSettings {
	format: LogFormat;
	/** The level of every module without its own. */
	level: LogLevel;
	/** Levels per module, keyed by Moleculer's upper-case module name (globs allowed). */
	levels: Record<string, LogLevel>;
	/** Values that must never be logged, wherever they appear (the JWT secret). */
	secrets: string[];
	/** Colours in text format. */
	colors: boolean;
	/** JSON format only: where lines go (a pino destination; stdout by default). */
	destination?: NodeJS.WritableStream;
}

const REDACTED = "[redacted]";
/** Keys whose values are never logged. */
const SECRET_KEY =
	/^(password|newPassword|oldPassword|passwordHash|hash|salt|token|accessToken|refreshToken|secret|jwtSecret|authorization|cookie|set-cookie|paymentMethod|cardNumber|cvc|cvv)$/i;
/** Secrets recognisable by their shape inside any string. */
const SECRET_TEXT: Array<[RegExp, string]> = [
	[/eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g, "[redacted jwt]"],
	[/\$argon2[a-z]*\$[^\s"',]+/g, "[redacted hash]"],
	[/\bBearer\s+\S+/gi, "Bearer [redacted]"],
	[/\bpm_[A-Za-z0-9_]+/g, "pm_[redacted]"],
];
const MAX_DEPTH = 6;

/** A scrubber for log arguments: removes secret keys, secret-shaped text and the given secret values. */
export function createScrubber(secrets: string[]): (value: unknown) => unknown {
	const known = secrets.filter(s => s.length >= 4);
	const text = (s: string) => {
		if (s.length < 8) return s;
		let out = s;
		for (const [pattern, replacement] of SECRET_TEXT) out = out.replace(pattern, replacement);
		for (const secret of known) if (out.includes(secret)) out = out.split(secret).join(REDACTED);
		return out;
	};
	const scrub = (value: unknown, depth: number, seen: Set<object>): unknown => {
		if (typeof value === "string") return text(value);
		if (value === null || typeof value !== "object") return value;
		if (seen.has(value) || depth > MAX_DEPTH) return "[…]";
		seen.add(value);
		if (value instanceof Error) {
			const err = value as Error & { code?: unknown; type?: unknown; data?: unknown };
			const out: Record<string, unknown> = { name: err.name, message: text(err.message) };
			if (err.code !== undefined) out.code = err.code;
			if (err.type !== undefined) out.type = err.type;
			if (err.data !== undefined) out.data = scrub(err.data, depth + 1, seen);
			if (err.stack) out.stack = text(err.stack);
			return out;
		}
		if (Array.isArray(value)) return value.map(v => scrub(v, depth + 1, seen));
		if (Buffer.isBuffer(value)) return `[${value.length} bytes]`;
		const out: Record<string, unknown> = {};
		for (const [key, v] of Object.entries(value)) {
			out[key] = SECRET_KEY.test(key) ? REDACTED : scrub(v, depth + 1, seen);
		}
		return out;
	};
	return value => scrub(value, 0, new Set());
}

/** The ids of the request a line is logged in, for the JSON lines. */
function requestFields(): Record<string, string> {
	const ctx = currentRequest();
	if (!ctx?.requestID) return {};
	return ctx.id
		? { requestId: ctx.requestID, traceId: ctx.requestID, spanId: ctx.id }
		: { requestId: ctx.requestID, traceId: ctx.requestID };
}

/**
 * Pino takes `(obj, msg)`, Moleculer logs `(msg, ...extras)`: pino would drop the extras (an error
 * included). This turns Moleculer's form into pino's, the error under `err`, scrubbed.
 */
function pinoArguments(scrub: (value: unknown) => unknown, args: unknown[]): [Record<string, unknown>, string] {
	const fields: Record<string, unknown> = {};
	const words: string[] = [];
	for (const arg of args) {
		if (arg instanceof Error) fields.err = scrub(arg);
		else if (arg !== null && typeof arg === "object") Object.assign(fields, scrub(arg));
		else if (arg !== undefined) words.push(String(scrub(typeof arg === "string" ? arg : String(arg))));
	}
	return [fields, words.join(" ")];
}

function levelOption(settings: LoggingSettings): LogLevel | Record<string, LogLevel> {
	if (Object.keys(settings.levels).length === 0) return settings.level;
	return { ...settings.levels, "**": settings.level };
}

/** The `logger` broker option for these settings. */
export function loggerOptions(settings: LoggingSettings): BrokerOptions["logger"] {
	const scrub = createScrubber(settings.secrets);
	const level = levelOption(settings);
	if (settings.format === "json") {
		return {
			type: "Pino",
			options: {
				level,
				pino: {
					options: {
						timestamp: () => `,"time":"${new Date().toISOString()}"`,
						formatters: { level: (label: string) => ({ level: label }) },
						mixin: requestFields,
						hooks: {
							logMethod(this: unknown, args: unknown[], method: (...a: unknown[]) => void) {
								const [fields, msg] = pinoArguments(scrub, args);
								method.call(this, fields, msg);
							},
						},
					},
					destination: settings.destination,
				},
			},
		} as BrokerOptions["logger"];
	}
	return {
		type: "Console",
		options: {
			level,
			colors: settings.colors,
			moduleColors: false,
			formatter: textFormatter(scrub),
		},
	} as BrokerOptions["logger"];
}

/**
 * `[time] LEVEL node [requestId] MODULE: message`: Moleculer's short look (`MODULE: message` kept together, as
 * operators and tests grep it), with the node, the request and scrubbed arguments.
 */
function textFormatter(scrub: (value: unknown) => unknown) {
	return function (
		this: { levelColorStr: Record<string, string> },
		type: string,
		args: unknown[],
		bindings: { nodeID: string; mod: string },
		{ printArgs }: { printArgs(args: unknown[]): unknown[] },
	): unknown[] {
		const ctx = currentRequest();
		const line: unknown[] = [
			`[${new Date().toISOString().substring(11)}]`,
			this.levelColorStr[type],
			bindings.nodeID,
		];
		if (ctx?.requestID) line.push(`[${ctx.requestID}]`);
		line.push(`${bindings.mod.toUpperCase()}:`);
		// An error prints as its (scrubbed) stack, as Moleculer's own formatter prints it.
		const printed = args.map(arg => {
			const clean = scrub(arg);
			if (!(arg instanceof Error)) return clean;
			const err = clean as { stack?: string; message: string; data?: unknown };
			return err.data === undefined
				? (err.stack ?? err.message)
				: `${err.stack ?? err.message} ${printArgs([err.data])[0]}`;
		});
		return line.concat(printArgs(printed));
	};
}

/** The logging settings of a node's configuration. */
export function loggingSettings(config: Config): LoggingSettings {
	return {
		format: config.logFormat,
		level: config.logLevel,
		levels: config.logLevels,
		secrets: config.jwtSecret ? [config.jwtSecret] : [],
		colors: !config.isProduction,
	};
}
