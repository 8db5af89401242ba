/**
 * What the test's own nats-server knows of moleshop's channels: where a channel's stream ends, and
 * how far each consumer group has got. A group acknowledges a message only once its handler has
 * finished with it (platform/channels.ts), so past that point its effects, or their absence, are final.
 */
import { connect, type JetStreamManager } from "nats";
import { waitFor } from "./process";

/** A channel's stream (and a group's durable consumer): its name with "." as "_", as the channels adapter names them. */
const natsName = (name: string) => name.split(".").join("_");

async function withJetStream<T>(url: string, work: (jsm: JetStreamManager) => Promise<T>): Promise<T> {
	const nc = await connect({ servers: url });
	try {
		return await work(await nc.jetstreamManager());
	} finally {
		await nc.close();
	}
}

/** The sequence number of the last message stored on `channel` (its full name, namespace first). */
export function lastSequence(url: string, channel: string): Promise<number> {
	return withJetStream(url, async jsm => (await jsm.streams.info(natsName(channel))).state.last_seq);
}

/**
 * Wait until each of `groups` has handled and acknowledged every message of `channel` up to `seq`,
 * with nothing delivered and not yet acknowledged, and nothing left to deliver.
 */
export function waitForConsumers(url: string, channel: string, groups: string[], seq: number, timeoutMs = 30_000) {
	return withJetStream(url, jsm =>
		waitFor(
			async () => {
				for (const group of groups) {
					const info = await jsm.consumers.info(natsName(channel), natsName(group));
					if (info.ack_floor.stream_seq < seq || info.num_ack_pending > 0 || info.num_pending > 0)
						return false;
				}
				return true;
			},
			timeoutMs,
			`${groups.join(" and ")} to acknowledge ${channel} up to message ${seq}`,
		),
	);
}
