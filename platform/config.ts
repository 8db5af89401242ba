/**
 * The one place where moleshop reads its environment.
 *
 * Every other module imports `config` (or calls `loadConfig` with a custom
 * environment in tests); nothing else touches `process.env`.
 */
import path from "node:path";

/** One entry of DISCOUNT_CODES, as the pricing service applies it (services/pricing/quote.ts). */
export interface DiscountCodeSetting {
	code: string;
	/** `percent`: value is a whole percentage (10 = 10 %); `fixed`: value is cents off. */
	kind: "percent" | "fixed";
	value: number;
	/** ISO dates; the code is valid from `validFrom` (inclusive) until `validUntil` (exclusive). */
	validFrom?: string;
	validUntil?: string;
	/** Smallest subtotal, in cents, the code applies to. */
	minSubtotal?: number;
}

export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace";
/** `json`: one JSON object per line (Pino); `text`: Moleculer's short console look. */
export type LogFormat = "json" | "text";

export interface Config {
	/** `NODE_ENV`: "production", "development" or "test". */
	env: string;
	isProduction: boolean;
	isTest: boolean;
	/** HTTP port of the API gateway. 0 picks a free port. */
	port: number;
	/** Folder of the embedded NeDB files (used when `mongoUri` is not set). */
	dataDir: string;
	/** With a MongoDB URI every stateful service stores its collection in MongoDB. */
	mongoUri: string | undefined;
	/** Secret that signs the JWTs. Required in production. */
	jwtSecret: string | undefined;
	jwtExpiresIn: string;
	adminEmail: string | undefined;
	adminPassword: string | undefined;
	logLevel: LogLevel;
	/** LOG_LEVELS ("ORDERS=debug,TRANSIT=warn"): levels of single modules (Moleculer's upper-case module names, globs allowed). */
	logLevels: Record<string, LogLevel>;
	/** LOG_FORMAT: json or text; json in production, text otherwise, unless set. */
	logFormat: LogFormat;
	/** Largest accepted JSON body (body-parser syntax: "64kb", "1mb"). */
	bodyLimit: string;
	/** Stock at or below which a product counts as low. */
	lowStockThreshold: number;
	/**
	 * Moleculer transporter: a NATS URL (`nats://host:4222`), or "TCP" for
	 * Moleculer's built-in transporter (the default: no infrastructure needed);
	 * null keeps the broker alone (tests).
	 */
	transporter: string | null;
	/** Clusters sharing one transporter stay apart by namespace. */
	namespace: string;
	/** Port of a node's own health endpoint (containers without the gateway use it). */
	healthPort: number | undefined;
	health: {
		/** HEALTH_CHECK_TIMEOUT_MS: a readiness check that has not answered by then has failed. */
		checkTimeoutMs: number;
		/** HEALTH_OUTBOX_BOUND: more unpublished events than this in a service's outbox make its node degraded. */
		outboxBound: number;
		/** HEALTH_DEAD_LETTER_BOUND: more dead letters than this make a NATS-mode node degraded. */
		deadLetterBound: number;
	};
	/** HSTS_MAX_AGE: seconds of Strict-Transport-Security the gateway sends (0, the default: none; set it behind TLS). */
	hstsMaxAge: number;
	/** METRICS_PORT: Moleculer's metrics are collected, and served in Prometheus format on this port, only when it is set. */
	metricsPort: number | undefined;
	/** TRACE_EXPORTER, ZIPKIN_URL, TRACE_SAMPLE_RATE, TRACES_PER_SECOND (platform/tracing.ts). */
	tracing: TracingSetting;
	/** Country a quote is for when none is given. */
	defaultCountry: string;
	pricing: {
		/** Subtotal after discount, in cents, from which shipping is free. */
		freeShippingFrom: number;
		/** DISCOUNT_CODES; without it the pricing service uses its demo codes. */
		discountCodes: DiscountCodeSetting[] | undefined;
	};
	events: {
		/** Deliveries of an event to a failing consumer before it is dead-lettered (NATS mode). */
		maxRetries: number;
	};
	payments: {
		/** Extra latency of every call to the simulated payment provider, in ms (for demos and fault tests). */
		providerLatencyMs: number;
		/** Share of charges (0 to 1) the simulated provider fails with a processing error. */
		providerFailureRate: number;
		/** How long payments waits for the provider before asking it what became of the charge. */
		providerTimeoutMs: number;
	};
	catalog: {
		/** How often a catalog node publishes the views it counted (a crash loses at most this much of its views). */
		viewFlushMs: number;
	};
	orders: {
		/** An order in an intermediate state (pending, reserved, charging, cancelling) this long is driven to a final state. */
		recoverAfterMs: number;
	};
	notifications: {
		/** SMTP server for email (smtp://user:pass@host:port); without it emails are only logged. */
		smtpUrl: string | undefined;
		mailFrom: string;
	};
}

/** Where a node's trace spans go: nowhere (tracing off), its log (console), or a Zipkin v2 collector (Zipkin, Jaeger). */
export type TracingExporter = "off" | "console" | "zipkin";

export interface TracingSetting {
	exporter: TracingExporter;
	/** Base URL of the collector; spans are POSTed to `${zipkinUrl}/api/v2/spans`. */
	zipkinUrl: string;
	/** Share of requests (0 to 1) traced; a request's calls and events share its decision. */
	sampleRate: number;
	/** When set, at most this many requests a second are traced, and `sampleRate` is not used. */
	tracesPerSecond: number | undefined;
}

const TRACING_EXPORTERS: TracingExporter[] = ["off", "console", "zipkin"];

/**
 * TRACE_EXPORTER and the settings of its exporter and sampling. Not `TRACING`: moleculer-runner replaces
 * any broker option named by a variable (`tracing` by TRACING, `tracing.exporter` by TRACING_EXPORTER) with
 * the variable's raw value, which turned tracing off in every node it started.
 */
function tracing(env: NodeJS.ProcessEnv): TracingSetting {
	const exporter = (optional(env.TRACE_EXPORTER) ?? "off").toLowerCase() as TracingExporter;
	if (!TRACING_EXPORTERS.includes(exporter)) {
		throw new Error(`TRACE_EXPORTER must be one of ${TRACING_EXPORTERS.join(", ")}, got "${env.TRACE_EXPORTER}"`);
	}
	const zipkinUrl = (optional(env.ZIPKIN_URL) ?? "http://localhost:9411").replace(/\/+$/, "");
	if (!/^https?:\/\/[^\s/]+/.test(zipkinUrl))
		throw new Error(`ZIPKIN_URL must be an http(s) URL, got "${zipkinUrl}"`);
	const perSecond = optional(env.TRACES_PER_SECOND);
	const tracesPerSecond = perSecond === undefined ? undefined : Number(perSecond);
	if (tracesPerSecond !== undefined && !(tracesPerSecond > 0 && Number.isFinite(tracesPerSecond))) {
		throw new Error(`TRACES_PER_SECOND must be a positive number, got "${perSecond}"`);
	}
	const rate = optional(env.TRACE_SAMPLE_RATE);
	return {
		exporter,
		zipkinUrl,
		sampleRate: rate === undefined ? 1 : fraction(rate, "TRACE_SAMPLE_RATE"),
		tracesPerSecond,
	};
}

const LOG_LEVELS: LogLevel[] = ["fatal", "error", "warn", "info", "debug", "trace"];

function integer(value: string | undefined, fallback: number, name: string): number {
	if (value == null || value === "") return fallback;
	const n = Number(value);
	if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got "${value}"`);
	return n;
}

function fraction(value: string | undefined, name: string): number {
	if (value == null || value === "") return 0;
	const n = Number(value);
	if (!(n >= 0 && n <= 1)) throw new Error(`${name} must be a number from 0 to 1, got "${value}"`);
	return n;
}

function optional(value: string | undefined): string | undefined {
	return value == null || value.trim() === "" ? undefined : value;
}

/** DISCOUNT_CODES: a JSON array of discount codes (see services/pricing/quote.ts). */
function discountCodes(value: string | undefined): DiscountCodeSetting[] | undefined {
	if (!optional(value)) return undefined;
	let codes: unknown;
	try {
		codes = JSON.parse(value!);
	} catch {
		throw new Error("DISCOUNT_CODES must be a JSON array of discount codes");
	}
	const valid = (entry: unknown) => {
		const c = (entry ?? {}) as { [K in keyof DiscountCodeSetting]?: unknown };
		const whole = (n: unknown): n is number => Number.isInteger(n);
		return (
			typeof c.code === "string" &&
			/^[A-Z0-9_-]{2,32}$/.test(c.code) &&
			(c.kind === "percent" || c.kind === "fixed") &&
			whole(c.value) &&
			c.value > 0 &&
			(c.kind === "fixed" || c.value <= 100) &&
			[c.validFrom, c.validUntil].every(
				d => d === undefined || (typeof d === "string" && !Number.isNaN(Date.parse(d))),
			) &&
			(c.minSubtotal === undefined || (whole(c.minSubtotal) && c.minSubtotal >= 0))
		);
	};
	if (!Array.isArray(codes) || !codes.every(valid)) {
		throw new Error(
			'DISCOUNT_CODES must be a JSON array like [{"code":"SPRING15","kind":"percent","value":15,"validUntil":"2027-04-01"}]',
		);
	}
	return codes as DiscountCodeSetting[];
}

function level(value: string, name: string): LogLevel {
	const lower = value.trim().toLowerCase() as LogLevel;
	if (!LOG_LEVELS.includes(lower)) throw new Error(`${name} must be one of ${LOG_LEVELS.join(", ")}, got "${value}"`);
	return lower;
}

/** LOG_LEVELS: comma-separated MODULE=level pairs. */
function moduleLevels(value: string | undefined): Record<string, LogLevel> {
	const levels: Record<string, LogLevel> = {};
	for (const pair of (value ?? "").split(",").filter(p => p.trim())) {
		const [mod, lvl, extra] = pair.split("=");
		if (!mod?.trim() || lvl === undefined || extra !== undefined || !/^[\w.*$-]+$/.test(mod.trim())) {
			throw new Error(`LOG_LEVELS must look like "ORDERS=debug,TRANSIT=warn", got "${pair.trim()}"`);
		}
		levels[mod.trim().toUpperCase()] = level(lvl, `LOG_LEVELS (${mod.trim()})`);
	}
	return levels;
}

function logFormat(value: string | undefined, production: boolean): LogFormat {
	if (!optional(value)) return production ? "json" : "text";
	const format = value!.trim().toLowerCase();
	if (format !== "json" && format !== "text") throw new Error(`LOG_FORMAT must be json or text, got "${value}"`);
	return format;
}

/** Build the configuration from an environment (defaults to `process.env`). */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
	const nodeEnv = env.NODE_ENV || "development";
	const logLevel = (env.LOG_LEVEL || "info").toLowerCase() as LogLevel;
	if (!LOG_LEVELS.includes(logLevel)) {
		throw new Error(`LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}, got "${env.LOG_LEVEL}"`);
	}
	return {
		env: nodeEnv,
		isProduction: nodeEnv === "production",
		isTest: nodeEnv === "test",
		port: integer(env.PORT, 3000, "PORT"),
		dataDir: path.resolve(env.DATA_DIR || "./data"),
		mongoUri: optional(env.MONGO_URI),
		jwtSecret: optional(env.JWT_SECRET),
		jwtExpiresIn: env.JWT_EXPIRES_IN || "12h",
		adminEmail: optional(env.ADMIN_EMAIL)?.toLowerCase(),
		adminPassword: optional(env.ADMIN_PASSWORD),
		logLevel,
		logLevels: moduleLevels(env.LOG_LEVELS),
		logFormat: logFormat(env.LOG_FORMAT, nodeEnv === "production"),
		bodyLimit: env.BODY_LIMIT || "64kb",
		lowStockThreshold: integer(env.LOW_STOCK_THRESHOLD, 5, "LOW_STOCK_THRESHOLD"),
		transporter: optional(env.TRANSPORTER) ?? (nodeEnv === "test" ? null : "TCP"),
		namespace: env.NAMESPACE || "moleshop",
		healthPort: optional(env.HEALTH_PORT) ? integer(env.HEALTH_PORT, 0, "HEALTH_PORT") : undefined,
		health: {
			checkTimeoutMs: Math.max(50, integer(env.HEALTH_CHECK_TIMEOUT_MS, 1_000, "HEALTH_CHECK_TIMEOUT_MS")),
			outboxBound: integer(env.HEALTH_OUTBOX_BOUND, 100, "HEALTH_OUTBOX_BOUND"),
			deadLetterBound: integer(env.HEALTH_DEAD_LETTER_BOUND, 0, "HEALTH_DEAD_LETTER_BOUND"),
		},
		hstsMaxAge: integer(env.HSTS_MAX_AGE, 0, "HSTS_MAX_AGE"),
		metricsPort: optional(env.METRICS_PORT) ? integer(env.METRICS_PORT, 0, "METRICS_PORT") : undefined,
		tracing: tracing(env),
		defaultCountry: (env.DEFAULT_COUNTRY || "US").toUpperCase(),
		pricing: {
			freeShippingFrom: integer(env.FREE_SHIPPING_FROM, 10_000, "FREE_SHIPPING_FROM"),
			discountCodes: discountCodes(env.DISCOUNT_CODES),
		},
		events: { maxRetries: Math.max(1, integer(env.EVENT_MAX_RETRIES, 5, "EVENT_MAX_RETRIES")) },
		payments: {
			providerLatencyMs: integer(env.PAYMENT_LATENCY_MS, 0, "PAYMENT_LATENCY_MS"),
			providerFailureRate: fraction(env.PAYMENT_FAILURE_RATE, "PAYMENT_FAILURE_RATE"),
			providerTimeoutMs: Math.max(100, integer(env.PAYMENT_TIMEOUT_MS, 2_000, "PAYMENT_TIMEOUT_MS")),
		},
		catalog: { viewFlushMs: Math.max(100, integer(env.VIEW_FLUSH_MS, 1_000, "VIEW_FLUSH_MS")) },
		orders: {
			recoverAfterMs: Math.max(1_000, integer(env.ORDER_RECOVERY_AFTER_MS, 30_000, "ORDER_RECOVERY_AFTER_MS")),
		},
		notifications: { smtpUrl: optional(env.SMTP_URL), mailFrom: env.MAIL_FROM || "moleshop <shop@moleshop.local>" },
	};
}

export const config: Config = loadConfig();
