/**
 * Broker options for every moleshop node (moleculer-runner loads this file).
 * Environment values come from platform/config.ts, the one place that reads them.
 *
 * Resilience comes from Moleculer itself, configured on purpose:
 * - requestTimeout: a call to a dead or stuck node fails after 3 s, instead of waiting for the
 *   node to be declared gone; with the retries below a client waits at most about 12 s for a 504.
 * - retryPolicy: retryable errors only (timeouts, a node that left or is stopping, a full queue),
 *   three times with backoff (0.1, 0.2, 0.4 s). Actions that must not run twice (checkout, sign-up,
 *   creating and deleting products) turn it off on the action. A retry goes to a node that has not
 *   failed that call yet, and a nested call's retries end within its caller's budget, 0.1 s before
 *   the caller's own deadline (RetryElsewhere, platform/middlewares/retry-elsewhere.ts: Moleculer
 *   balances a retry blindly, back to a dead node half the time, and gives each attempt its whole
 *   timeout again, so carts' retries of a killed pricing replica outlived the gateway's 3 s for carts).
 * - circuitBreaker: per endpoint (node + action); half of at least 5 calls failing within
 *   10 s opens it, one trial call after 5 s. A failure is a 5xx, a timeout (Timeout runs before
 *   CircuitBreaker in the middleware list below; Moleculer's default order hides them, moleculer#1202),
 *   the node itself refusing the call (its own circuit is open, or it is stopping), or an error that
 *   is not Moleculer's, such as a store's (platform/errors.ts, isEndpointFailure). A failure stays
 *   with the node where it happened: Moleculer skips errors raised on a third node, and
 *   isEndpointFailure skips the call errors a caller passes on about a node it called (carts'
 *   "pricing.quote timed out on pricing-1" does not count against carts), and skipped calls.
 * - bulkhead: set on the actions that call slow dependencies (password hashing), see users; the
 *   consumers of the default mode's events queue without bound rather than drop an event.
 * - heartbeats every 2 s, a silent node is dropped after 6 s.
 * - tracking: a stopping node first announces it has no services, then finishes its in-flight
 *   requests (up to 10 s) before it leaves; requests that still reach it are refused with a
 *   retryable error, which the callers retry elsewhere.
 * - registry: RoundRobin over the available endpoints, preferring the local node.
 * - announcement: a node tells the cluster of its services once it has started, its event consumers
 *   included (announceServices below), instead of after Moleculer's 1 s debounce of service changes.
 */
import type { BrokerOptions, Errors, Middleware, ServiceBroker } from "moleculer";
import { config } from "./platform/config";
import { EVENT_TYPES } from "./contracts/events";
import { channelsMiddleware } from "./platform/channels";
import { CircuitLogger } from "./platform/middlewares/circuit-logger";
import { isEndpointFailure } from "./platform/errors";
import { HealthEndpoint } from "./platform/middlewares/health-endpoint";
import { NodeReport } from "./platform/node-report";
import { ShopMetrics } from "./platform/metrics";
import { loggerOptions, loggingSettings } from "./platform/logging";
import { RequestScope } from "./platform/middlewares/request-scope";
import { RetryElsewhere } from "./platform/middlewares/retry-elsewhere";
import { TraceContext, tracingOptions } from "./platform/tracing";
import { replCommands } from "./cluster/repl-commands";

/** NATS when TRANSPORTER is a NATS URL; otherwise Moleculer's built-in TCP transporter, discovering nodes on this host only. */
function transporter(): BrokerOptions["transporter"] {
	if (!config.transporter) return null;
	if (config.transporter === "TCP") {
		return { type: "TCP", options: { udpMulticast: "239.0.0.0", udpBindAddress: "127.0.0.1", useHostname: false } };
	}
	return { type: "NATS", options: { url: config.transporter, maxReconnectAttempts: -1, reconnectTimeWait: 1000 } };
}

/**
 * Moleculer 0.15 announces a node's services (its INFO packet) 1 s after the last of them registered
 * (`transit.serviceChangedDebounceTime`), a timer that was a second of every cluster start: the gateway
 * is not ready before it has heard of every service. `started` runs once every service and middleware
 * has started — the channels have created their streams and subscribed — so the node announces itself
 * then, at once; the debounced INFO that follows carries the same services and changes nothing.
 */
function announceServices(broker: ServiceBroker): Promise<void> | void {
	if (broker.transit) return broker.registry.discoverer.sendLocalNodeInfo();
}

const brokerConfig: BrokerOptions = {
	namespace: config.namespace,
	transporter: transporter(),
	// JSON lines in production, Moleculer's short text otherwise; request ids per line, secrets scrubbed (platform/logging.ts).
	logger: loggerOptions(loggingSettings(config)),
	// Caches reads (product and catalog pages, account lookups); moleculer-db cleans it when entities
	// change. Bounded: the least recently used of 10,000 entries goes first, whatever the queries asked.
	cacher: { type: "MemoryLRU", options: { max: 10_000 } },
	// fastest-validator checks every action's params before its handler runs.
	validator: true,

	requestTimeout: 3_000,
	retryPolicy: {
		enabled: true,
		retries: 3,
		delay: 100,
		maxDelay: 1_000,
		factor: 2,
		check: (err: Error) => !!(err as Errors.MoleculerError).retryable,
	},
	circuitBreaker: {
		enabled: true,
		threshold: 0.5,
		minRequestCount: 5,
		windowTime: 10,
		halfOpenTime: 5_000,
		// A refusal counts only when the called node refused for itself (data.nodeID), not for a service it calls.
		check: isEndpointFailure,
	},
	// Defaults for the bulkheads actions and events turn on. The queue has no bound (0) unless the action
	// sets one (users does): in the default mode a channel consumer is an event handler with a bulkhead of
	// its maxInFlight, and an event refused by a full queue there would be lost (it lives only in memory).
	bulkhead: { enabled: false, concurrency: 10, maxQueueSize: 0 },
	heartbeatInterval: 2,
	heartbeatTimeout: 6,
	tracking: { enabled: true, shutdownTimeout: 10_000 },
	registry: { strategy: "RoundRobin", preferLocal: true, stopDelay: 500 },

	// Moleculer's internal middlewares, in its own order except Timeout before CircuitBreaker.
	internalMiddlewares: false,
	middlewares: [
		// Domain events (platform/channels.ts): JetStream with NATS, Moleculer's balanced events otherwise.
		channelsMiddleware(EVENT_TYPES) as unknown as Middleware,
		CircuitLogger,
		HealthEndpoint(config.healthPort),
		// Every node answers `$shop.report` (its checks and circuits) for the REPL.
		NodeReport(),
		// The shop's own metrics (platform/metrics.ts), registered only when metrics are on.
		ShopMetrics,
		"ActionHook",
		"Validator",
		"Bulkhead",
		"Cacher",
		"ContextTracker",
		"Timeout",
		"CircuitBreaker",
		// Retries go to another node and end within the caller's budget (platform/middlewares/retry-elsewhere.ts).
		RetryElsewhere,
		"Retry",
		"Fallback",
		"ErrorHandler",
		"Tracing",
		// Events carry the trace of the action that wrote them to their consumers (platform/tracing.ts).
		TraceContext as unknown as Middleware,
		"Metrics",
		"Debounce",
		"Throttle",
		// Outermost: every line logged in a call carries its request id (platform/middlewares/request-scope.ts).
		RequestScope,
	],

	started: announceServices,

	replOptions: { customCommands: replCommands },
	// Collected only when reported: every action call would otherwise update histograms nobody reads.
	metrics: config.metricsPort
		? { enabled: true, reporter: [{ type: "Prometheus", options: { port: config.metricsPort, path: "/metrics" } }] }
		: { enabled: false },
	tracing: tracingOptions(config.tracing),
};

export default brokerConfig;
