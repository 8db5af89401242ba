/**
 * What a node answers about itself: alive (`/health`) and able to serve (`/ready`), with reasons.
 *
 * The node's own checks are the transporter's connection and, in NATS mode, JetStream
 * (platform/channels.ts). Every other check belongs to a service: a mixin registers it when the service
 * is created (`contributeHealthCheck`; the db mixin adds its store, the outbox mixin its backlog), so a
 * new service needs no change here. Each check is bounded: it races HEALTH_CHECK_TIMEOUT_MS, and probes
 * arriving while one runs share its answer, so a burst of probes costs one round of checks.
 *
 * A failing check makes the node `unavailable` (503: take it out of rotation); a check over its bound
 * (an outbox backing up, dead letters waiting) makes it `degraded`, which is still ready (200): the node
 * serves, an operator should look. Answers name checks and counts only, never an error's text.
 */
import type { Service, ServiceBroker } from "moleculer";
import { config } from "./config";
import { jetStreamHealth } from "./channels";

/** One check's verdict: `ok` false fails readiness; `degraded` marks a bound exceeded. Details are names and counts. */
export type CheckResult = { ok: boolean; degraded?: boolean; reason?: string } & Record<
	string,
	string | number | boolean | undefined
>;

/** A check: cheap (no scans), answering its verdict. */
export type HealthCheck = () => Promise<CheckResult> | CheckResult;

export type ReadinessStatus = "ready" | "degraded" | "unavailable";

/** The answer of `/ready`. */
export interface Readiness {
	status: ReadinessStatus;
	nodeID: string;
	/** By check name: `transporter`, `jetstream`, `<service>.store`, `<service>.outbox`… */
	checks: Record<string, CheckResult>;
}

/** The answer of `/health`. */
export interface Liveness {
	status: "ok" | "unavailable";
	nodeID: string;
}

const CHECKS = Symbol("healthChecks");
type WithChecks = Service & { [CHECKS]?: Map<string, HealthCheck> };

/**
 * Register `check` of `service` under `name` (reported as `<service>.<name>`). Call it from a mixin's
 * `created` hook.
 */
export function contributeHealthCheck(service: Service, name: string, check: HealthCheck): void {
	const owner = service as WithChecks;
	(owner[CHECKS] ??= new Map()).set(name, check);
}

/** Alive: the broker runs (started, not stopping). A lost transporter is for readiness, not a restart. */
export function liveness(broker: ServiceBroker): Liveness {
	const alive = broker.started && !broker.stopping;
	return { status: alive ? "ok" : "unavailable", nodeID: broker.nodeID };
}

/** `check`'s verdict within the timeout; a throw or a timeout is a failed check (without the error's text). */
async function bounded(check: HealthCheck): Promise<CheckResult> {
	let timer: NodeJS.Timeout | undefined;
	const timeout = new Promise<CheckResult>(resolve => {
		timer = setTimeout(() => resolve({ ok: false, reason: "timed out" }), config.health.checkTimeoutMs);
	});
	try {
		return await Promise.race([Promise.resolve().then(check), timeout]);
	} catch {
		return { ok: false, reason: "check failed" };
	} finally {
		clearTimeout(timer);
	}
}

/**
 * The transporter is connected. Moleculer's flag stays up while a NATS client reconnects, so over NATS
 * the client's round trip to the server must answer too (it fails at once while disconnected).
 */
async function transporterHealth(broker: ServiceBroker): Promise<CheckResult> {
	const transit = broker.transit!;
	if (!transit.connected) return { ok: false, reason: "not connected" };
	const client = (transit.tx as { client?: { rtt?: () => Promise<number> } }).client;
	if (typeof client?.rtt !== "function") return { ok: true };
	try {
		return { ok: true, rttMs: Math.round(await client.rtt()) };
	} catch {
		return { ok: false, reason: "not connected" };
	}
}

/** The node's own checks and those its services contributed, by name. */
function checksOf(broker: ServiceBroker): Map<string, HealthCheck> {
	const checks = new Map<string, HealthCheck>();
	if (broker.transit) checks.set("transporter", () => transporterHealth(broker));
	const jetstream = jetStreamHealth(broker);
	if (jetstream) checks.set("jetstream", jetstream);
	for (const service of broker.services as WithChecks[]) {
		for (const [name, check] of service[CHECKS] ?? []) checks.set(`${service.fullName}.${name}`, check);
	}
	return checks;
}

/** The overall status of a set of verdicts. */
export function statusOf(results: Iterable<CheckResult>): ReadinessStatus {
	let status: ReadinessStatus = "ready";
	for (const result of results) {
		if (!result.ok) return "unavailable";
		if (result.degraded) status = "degraded";
	}
	return status;
}

const inFlight = new WeakMap<ServiceBroker, Promise<Readiness>>();

/** Run every check of the node (at most one round at a time per node) and answer the verdict. */
export function readiness(broker: ServiceBroker): Promise<Readiness> {
	const running = inFlight.get(broker);
	if (running) return running;
	const round = (async (): Promise<Readiness> => {
		if (liveness(broker).status !== "ok")
			return {
				status: "unavailable",
				nodeID: broker.nodeID,
				checks: { broker: { ok: false, reason: "not running" } },
			};
		const entries = [...checksOf(broker)];
		const results = await Promise.all(entries.map(([, check]) => bounded(check)));
		const checks = Object.fromEntries(entries.map(([name], i) => [name, results[i]]));
		return { status: statusOf(results), nodeID: broker.nodeID, checks };
	})().finally(() => inFlight.delete(broker));
	inFlight.set(broker, round);
	return round;
}

/** The HTTP status of a readiness status: degraded still serves. */
export const httpStatusOf = (status: ReadinessStatus | Liveness["status"]) => (status === "unavailable" ? 503 : 200);
