/**
 * The JetStream streams of a starting node (platform/channels.ts): every event stream and the dead
 * letters' exist once it has connected, each asked for once (its consumers do not ask again), and
 * its consumers receive what was published before they subscribed.
 */
import { ServiceBroker } from "moleculer";
import { connect } from "nats";
import { CONSUMER, DEAD_LETTER_QUEUE, JetStreamAdapter, channelsMiddleware } from "../../platform/channels";
import { EVENT_TYPES } from "../../contracts/events";
import { describeWithNats, startNatsServer, type NatsServer } from "../helpers/nats";
import { waitFor } from "../helpers/process";

describeWithNats("a node's JetStream streams", () => {
	let nats: NatsServer;
	beforeAll(async () => {
		nats = await startNatsServer();
	});
	afterAll(() => nats?.destroy());

	const node = (nodeID: string, namespace: string) =>
		new ServiceBroker({
			nodeID,
			namespace,
			logger: false,
			transporter: { type: "NATS", options: { url: nats.url } },
			middlewares: [channelsMiddleware(EVENT_TYPES, nats.url) as any],
		});

	it("are created once each when it connects, before its consumers subscribe, which get what was published before", async () => {
		const namespace = `streams-${process.pid}`;
		const publisher = node(`publisher-${process.pid}`, namespace);
		await publisher.start();
		await publisher.sendToChannel("order.paid", { n: 1 }); // no consumer yet: the stream keeps it

		// The adapter's own createStream is the JetStream request; JetStreamAdapter decides when to make it.
		const adapterCreateStream = jest.spyOn(Object.getPrototypeOf(JetStreamAdapter.prototype), "createStream");
		const received: unknown[] = [];
		const consumer = node(`consumer-${process.pid}`, namespace);
		consumer.createService({
			name: "streams-consumer",
			channels: {
				"order.paid": { ...CONSUMER, handler: (payload: unknown) => void received.push(payload) },
				"user.registered": { ...CONSUMER, handler: () => undefined },
			},
		} as any);
		try {
			await consumer.start();
			const asked = adapterCreateStream.mock.calls.map(([name]) => name);
			const expected = [...EVENT_TYPES, DEAD_LETTER_QUEUE].map(
				name => `${namespace}_${name.split(".").join("_")}`,
			);
			expect([...asked].sort()).toEqual([...expected].sort());

			await waitFor(async () => received.length === 1, 10_000, "the event published before the consumer");
			expect(received).toEqual([{ n: 1 }]);

			const nc = await connect({ servers: nats.url });
			try {
				const jsm = await nc.jetstreamManager();
				expect((await jsm.streams.info(`${namespace}_${DEAD_LETTER_QUEUE}`)).config.max_age).toBe(0);
				const consumers = await jsm.consumers.list(`${namespace}_user_registered`).next();
				expect(consumers.map(info => info.name)).toEqual(["streams-consumer"]);
			} finally {
				await nc.close();
			}
		} finally {
			adapterCreateStream.mockRestore();
			await consumer.stop();
			await publisher.stop();
		}
	});
});
