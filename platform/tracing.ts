/**
 * Traces: Moleculer's tracer, with the exporter and sampling TRACE_EXPORTER chooses (platform/config.ts).
 *
 * Moleculer gives every call of a request the request's `ctx.requestID` as trace id, so a checkout is
 * one trace across the gateway, orders, products, pricing, payments and invoices by itself. Domain events
 * are another matter: the outbox publishes them later, without the request's context, and the channels'
 * consumers run without one. So an event written while an action runs keeps, in its envelope, the
 * request id, the writing action's span id and the sampling decision (`trace`, contracts/events.ts), which
 * survive redelivery, dead-lettering and redrive with the payload; the consumer's handling is a span of
 * that trace, a child of that action's span (TraceContext below), and its log lines carry that request
 * id. The call running now comes from RequestScope's scope (platform/middlewares/request-scope.ts).
 *
 * Zipkin (and Jaeger) want hex ids: the trace id is the X-Request-Id without its dashes when that is
 * 16 or 32 hex digits (the gateway's own ids are UUIDs), otherwise the first 32 hex digits of its
 * SHA-256 (`zipkinTraceId`), so the id the gateway answers with always finds its trace.
 */
import { createHash } from "node:crypto";
import {
	TracerExporters,
	type BrokerOptions,
	type Middleware,
	type ServiceBroker,
	type TracerOptions,
} from "moleculer";
import type { EventTrace } from "../contracts/events";
import type { TracingSetting } from "./config";
import { currentRequest, inRequest } from "./middlewares/request-scope";

const HEX_ID = /^(?:[0-9a-f]{16}|[0-9a-f]{32})$/i;

/** The Zipkin trace id of a request id (X-Request-Id): itself without dashes if that is hex, else a hash of it. */
export function zipkinTraceId(requestID: string): string {
	const hex = requestID.replace(/-/g, "");
	return HEX_ID.test(hex) ? hex.toLowerCase() : createHash("sha256").update(requestID).digest("hex").slice(0, 32);
}

/** A Zipkin span id (16 hex digits) of a Moleculer span id. */
const zipkinSpanId = (id: string) => zipkinTraceId(id).slice(0, 16);

// The exporter classes ship without TypeScript types.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const ZipkinBase = TracerExporters.Zipkin as unknown as new (opts: object) => any;

/**
 * Moleculer's Zipkin exporter with valid ids (its own cuts any id to its first 16 characters, dashes
 * removed, which is not hex for a request id such as "checkout.42") and a last flush when the node stops.
 */
export class HexZipkinExporter extends ZipkinBase {
	// eslint-disable-next-line @typescript-eslint/no-explicit-any
	makePayload(span: { traceID: string }): any {
		const payload = super.makePayload(span);
		payload.traceId = zipkinTraceId(span.traceID);
		return payload;
	}

	convertID(id: string | null | undefined): string | null {
		return id ? zipkinSpanId(id) : null;
	}

	async stop() {
		this.flush();
		return super.stop();
	}
}

/** The broker's `tracing` options for a TRACE_EXPORTER setting. */
export function tracingOptions(setting: TracingSetting): BrokerOptions["tracing"] {
	if (setting.exporter === "off") return { enabled: false };
	const exporter =
		setting.exporter === "console"
			? { type: "Console", options: { colors: false, width: 100 } }
			: new HexZipkinExporter({ baseURL: setting.zipkinUrl, interval: 5 });
	return {
		enabled: true,
		events: true,
		// Params and answers are not tags: they hold addresses, tokens and card references.
		tags: { action: { params: false, meta: false, response: false }, event: { params: false, meta: false } },
		sampling: setting.tracesPerSecond ? { tracesPerSecond: setting.tracesPerSecond } : { rate: setting.sampleRate },
		exporter: exporter as TracerOptions["exporter"],
	};
}

/**
 * Stamp events written now with the request writing them (none outside a call): its handling is then a
 * span of that trace where tracing is on, and its log lines carry that request id either way.
 */
export function withTrace<T extends { trace?: EventTrace }>(events: readonly T[]): readonly T[] {
	const call = currentRequest();
	if (!call?.requestID || !call.id) return events;
	const trace: EventTrace = { requestID: call.requestID, parentID: call.id, sampled: !!call.tracing };
	return events.map(event => ({ ...event, trace }));
}

/** A consumer of a channel, as the channels middleware hands it to `localChannel` hooks. */
interface ChannelDef {
	name: string;
	group: string;
}

type ChannelHandler = (payload: unknown, raw: unknown) => Promise<unknown>;

type CallOptions = { parentCtx?: unknown; parentSpan?: unknown; requestID?: unknown };
type Call = (action: string, params?: unknown, opts?: CallOptions) => Promise<unknown>;

/**
 * Broker middleware, a no-op while tracing is off: a consumer's handling of an event with a `trace` is a
 * span of that trace, and the calls a handler makes with `this.broker.call` (the order saga's
 * payments.charge and invoices.issue, a consumer's lookups) are children of the span of the call they
 * are made in (RequestScope's, platform/middlewares/request-scope.ts, which is outside this one).
 */
export function TraceContext(broker: ServiceBroker): Middleware {
	if (!broker.isTracingEnabled()) return { name: "TraceContext" } as Middleware;
	const tracer = broker.tracer;
	return {
		name: "TraceContext",

		call(next: Call): Call {
			return (action, params, opts) => {
				const call = currentRequest();
				if (!call?.id || opts?.parentCtx || opts?.parentSpan || opts?.requestID)
					return next(action, params, opts);
				// Moleculer's `parentSpan` option: the new context's parent, trace and sampling decision.
				const parentSpan = { id: call.id, traceID: call.requestID ?? call.id, sampled: !!call.tracing };
				return next(action, params, { ...opts, parentSpan });
			};
		},

		localChannel(next: ChannelHandler, chan: ChannelDef): ChannelHandler {
			return async (payload, raw) => {
				const event = payload as { id?: string; trace?: EventTrace } | null;
				if (!event?.trace?.requestID) return next(payload, raw);
				const { requestID, parentID, sampled } = event.trace;
				const span = tracer.startSpan(`channel '${chan.name}'`, {
					type: "channel",
					traceID: requestID,
					parentID,
					sampled,
					service: chan.group,
					tags: { channel: chan.name, group: chan.group, eventId: event.id },
				});
				try {
					const answer = await inRequest({ requestID, id: span.id, tracing: sampled }, () =>
						next(payload, raw),
					);
					span.finish();
					return answer;
				} catch (err) {
					span.setError(err as Error);
					span.finish();
					throw err;
				}
			};
		},
	} as unknown as Middleware;
}
