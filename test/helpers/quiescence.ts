/**
 * Points at which a test of one broker knows that an effect is complete and nothing more is on
 * its way, instead of a fixed sleep: the outbox relayed (platform/outbox.mixin.ts), then a marker
 * on the channel delivered after everything published before it.
 */
import type { ServiceBroker } from "moleculer";
import { domainEvent, type EventType } from "../../contracts/events";
import { waitFor } from "./process";

/** Wait until the local service `name` has published its whole outbox: no document holds an event, no relay runs. */
export function outboxRelayed(broker: ServiceBroker, name: string, timeoutMs = 10_000) {
	const service = broker.getLocalService(name) as any;
	return waitFor(
		async () => {
			if (service.relaying) return false;
			const docs = (await service.adapter.find({ query: {} })) as Array<{ outbox?: unknown[] }>;
			return docs.every(doc => !doc.outbox?.length);
		},
		timeoutMs,
		`the ${name} outbox to be relayed`,
	);
}

/**
 * Publish a marker event on `channel` and wait until `received` (what the consumer under test has
 * handled) holds it. One local consumer takes a channel's messages in the order they were published,
 * so once the marker is in, so is everything published on the channel before it.
 */
export async function channelDrained(
	broker: ServiceBroker,
	channel: EventType,
	received: () => ReadonlyArray<{ id?: string }>,
	timeoutMs = 10_000,
) {
	const marker = domainEvent(channel, { marker: true } as never);
	await broker.sendToChannel(channel, marker, { msgID: marker.id });
	await waitFor(async () => received().some(event => event.id === marker.id), timeoutMs, `the ${channel} marker`);
}
