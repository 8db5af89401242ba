/** The db mixin: its guard (on the embedded store a stateful service runs on one node only), its indexes, and the embedded store's datafile. */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ServiceBroker, type BrokerOptions } from "moleculer";
import brokerConfig from "../../moleculer.config";
import ProductsService from "../../services/products/products.service";
import PricingService from "../../services/pricing/pricing.service";
import { EmbeddedStoreAdapter } from "../../platform/embedded-store";
import { DbMixin, peerWaitMs } from "../../platform/db.mixin";
import { startBroker } from "../helpers/shop";
import { itOnEmbeddedStore } from "../helpers/store";

const brokers: ServiceBroker[] = [];
function node(name: string, services: any[]) {
	const broker = new ServiceBroker({
		...brokerConfig,
		nodeID: name,
		namespace: `guard-${process.pid}`,
		transporter: "Fake",
		logger: false,
	});
	services.forEach(schema => broker.createService(schema));
	brokers.push(broker);
	return broker;
}
afterAll(() => Promise.all(brokers.map(b => b.stop())));

const SHARED = "with MongoDB every instance shares the data, so any number may run";

itOnEmbeddedStore(
	"refuses a second instance of a stateful service, naming the node that serves it, before opening its store",
	SHARED,
	async () => {
		await node("first", [ProductsService]).start();
		const second = node("second", [ProductsService]);
		await expect(second.start()).rejects.toThrow(
			/Refusing to start 'products': node 'first' already runs it.*MONGO_URI/,
		);
		expect((second.getLocalService("products") as any).adapter.db).toBeUndefined();
	},
);

it("listens for another instance as long as finding the running nodes takes: TCP gossip 2 s, a broadcast 0.5 s", () => {
	const transit = (transporter: BrokerOptions["transporter"]) => new ServiceBroker({ logger: false, transporter });
	expect(peerWaitMs(transit("TCP"))).toBe(2_000);
	expect(peerWaitMs(transit({ type: "NATS", options: { url: "nats://127.0.0.1:4222" } }))).toBe(500);
	expect(peerWaitMs(transit("Fake"))).toBe(500);
});

it("loads mongoose on the MongoDB path only (every service, the build in dist/)", () => {
	const root = path.resolve(__dirname, "../..");
	const files = fs
		.readdirSync(path.join(root, "dist/services"), { recursive: true, encoding: "utf8" })
		.filter(file => file.endsWith(".service.js"));
	const script = `${files.map(file => `require("./dist/services/${file}");`).join("")}
		console.log(Object.keys(require.cache).some(file => file.includes("/node_modules/mongoose/")));`;
	const loads = (env: NodeJS.ProcessEnv) =>
		spawnSync(process.execPath, ["-e", script], { cwd: root, env: { ...process.env, NODE_ENV: "test", ...env } });
	expect(files).toContain(path.join("users", "users.service.js"));
	expect(files).toContain(path.join("products", "products.service.js"));
	expect(loads({ MONGO_URI: "" }).stdout.toString().trim()).toBe("false");
	expect(loads({ MONGO_URI: "mongodb://127.0.0.1:1/never-connected" }).stdout.toString().trim()).toBe("true");
});

it("lets stateless services run on any number of nodes", async () => {
	await node("pricing-a", [PricingService]).start();
	await expect(node("pricing-b", [PricingService]).start()).resolves.toBeUndefined();
});

describe("the embedded store's datafile", () => {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), "moleshop-datafile-"));
	afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
	const lines = (file: string) => fs.readFileSync(file, "utf8").trim().split("\n");

	it("holds every write once it answered, also after a compaction rewrote the file, and loads it back", async () => {
		const file = path.join(dir, "things.db");
		const adapter = new EmbeddedStoreAdapter({ filename: file });
		await adapter.connect();
		const doc = (await adapter.insert({ name: "Mug", stock: 1 })) as any;
		expect(lines(file).at(-1)).toContain(doc._id);
		expect(await adapter.updateMany({ _id: doc._id }, { $inc: { stock: 1 } })).toBe(1);
		expect(JSON.parse(lines(file).at(-1)!)).toMatchObject({ _id: doc._id, stock: 2 });

		await adapter.db!.compactDatafileAsync(); // a new file under the same name
		expect(lines(file)).toHaveLength(1);
		await adapter.updateMany({ _id: doc._id }, { $inc: { stock: 1 } });
		await adapter.insert({ name: "Plate", stock: 5 });
		expect(lines(file)).toHaveLength(3);

		// Another store opening the file without the first one closing it (as after a crash) finds it all.
		const reopened = new EmbeddedStoreAdapter({ filename: file });
		await reopened.connect();
		expect(await reopened.findById(doc._id)).toMatchObject({ name: "Mug", stock: 3 });
		expect(await reopened.findOne({ name: "Plate" })).toMatchObject({ stock: 5 });
		await Promise.all([adapter.disconnect(), reopened.disconnect()]);
	});
});

describe("the store's indexes", () => {
	/** A collection with an index many documents share a key of, and one each document has its own key of. */
	const Indexed = {
		name: "indexed",
		mixins: [
			DbMixin({
				collection: `indexed_${process.pid}`,
				schema: { status: String, rank: Number, note: String, tags: [String], code: String },
				indexes: [
					{ field: "status" },
					{ field: "rank" },
					{ field: "tags" },
					{ field: "code", unique: true, sparse: true },
				],
			}),
		],
	};
	let broker: ServiceBroker;
	let service: any;
	beforeAll(async () => {
		broker = await startBroker([Indexed]);
		service = broker.getLocalService("indexed");
	});
	afterAll(() => broker.stop());

	it("finds every document by its current keys after updates and removals of documents sharing a key", async () => {
		const docs = [];
		for (let i = 0; i < 60; i++)
			docs.push(
				await service.adapter.insert({ status: "open", rank: i % 7, note: "new", tags: ["a", `t${i % 3}`] }),
			);
		for (const [i, doc] of docs.entries()) {
			if (i % 3 === 0) await service.adapter.updateMany({ _id: doc._id }, { $set: { status: "done" } });
			else await service.adapter.updateMany({ _id: doc._id }, { $set: { note: `seen ${i}` } });
		}
		for (const doc of docs.slice(0, 6)) await service.adapter.removeMany({ _id: doc._id });
		await service.adapter.updateMany({ _id: docs[10]._id }, { $set: { tags: ["b"] } });

		const open = (await service.adapter.find({ query: { status: "open" } })).map((d: any) => service.plain(d));
		expect(open.map((d: any) => String(d._id)).sort()).toEqual(
			docs
				.filter((_, i) => i >= 6 && i % 3 !== 0)
				.map(d => String(d._id))
				.sort(),
		);
		expect(open.every((d: any) => d.note.startsWith("seen "))).toBe(true);
		expect(await service.adapter.count({ query: { status: "done" } })).toBe(18);
		expect(await service.adapter.count()).toBe(54);
		expect(await service.adapter.count({ query: { tags: "a" } })).toBe(53);
		expect(await service.adapter.count({ query: { tags: "b" } })).toBe(1);
		expect(await service.adapter.count({ query: { rank: 3 } })).toBe(
			docs.filter((_, i) => i >= 6 && i % 7 === 3).length,
		);
	});

	it("answers with copies: what a caller holds stays as it was read when the document changes in place", async () => {
		const doc = await service.adapter.insert({ status: "held", rank: 1000, note: "before", tags: ["held"] });
		const [read] = await service.adapter.find({ query: { status: "held" } });
		const byId = await service.adapter.findById(doc._id);
		const updated = await service.adapter.updateById(doc._id, { $set: { note: "after" } });
		updated.note = "changed by the caller";
		read.note = "changed by the caller";
		expect(byId.note).toBe("before");
		expect((await service.adapter.findById(doc._id)).note).toBe("after");
		expect((await service.adapter.find({ query: { tags: "held" } })).map((d: any) => d.note)).toEqual(["after"]);
		await service.adapter.removeMany({ status: "held" });
	});

	it("answers pages in the order of a sort by an indexed field, each document once", async () => {
		for (const direction of ["", "-"]) {
			const pages = [];
			for (let offset = 0; offset < 60; offset += 8)
				pages.push(
					...(await service.adapter.find({ query: {}, sort: [`${direction}rank`], offset, limit: 8 })),
				);
			const ranks = pages.map((d: any) => d.rank);
			const sorted = [...ranks].sort((a, b) => a - b);
			expect(ranks).toEqual(direction ? sorted.reverse() : sorted);
			expect(new Set(pages.map((d: any) => String(d._id))).size).toBe(54);
			const notes = await service.adapter.find({
				query: { note: { $regex: /^seen 1/ } },
				sort: [`${direction}rank`],
				limit: 100,
			});
			expect(notes.map((d: any) => d.note).sort()).toEqual(
				["seen 10", "seen 11", "seen 13", "seen 14", "seen 16", "seen 17", "seen 19"].sort(),
			);
		}
	});

	itOnEmbeddedStore(
		"finds the current version of every document after a multi-document update, and none after one a unique key refused",
		"MongoDB's updateMany can stop part way: all or nothing across documents is the embedded store's own",
		async () => {
			const batch = `batch-${Date.now()}`;
			for (let i = 0; i < 5; i++)
				await service.adapter.insert({
					status: batch,
					rank: 100 + i,
					note: "v1",
					tags: [batch],
					code: `${batch}-${i}`,
				});
			// Keys kept (status, rank, tags, code) in every index: each document's new version takes the old one's place.
			expect(await service.adapter.updateMany({ status: batch }, { $set: { note: "v2" } })).toBe(5);
			// A change that gives two documents the same code: refused, and nothing of it stays in any index.
			await expect(
				service.adapter.updateMany({ status: batch }, { $set: { note: "v3", code: `${batch}-same` } }),
			).rejects.toThrow();
			const byIndex = [
				{ status: batch },
				{ rank: { $gte: 100, $lt: 105 } },
				{ tags: batch },
				{ code: { $in: [0, 1, 2, 3, 4].map(i => `${batch}-${i}`) } },
			];
			for (const query of byIndex) {
				const found = await service.adapter.find({ query });
				expect(found.map((d: any) => d.note)).toEqual(["v2", "v2", "v2", "v2", "v2"]);
			}
			// The same with a document that keeps its keys (the first already has the code) beside those moving.
			await expect(
				service.adapter.updateMany({ status: batch }, { $set: { note: "v4", code: `${batch}-0` } }),
			).rejects.toThrow();
			for (const query of byIndex) {
				const found = await service.adapter.find({ query });
				expect(found.map((d: any) => d.note)).toEqual(["v2", "v2", "v2", "v2", "v2"]);
			}
			expect(await service.adapter.count({ query: { code: `${batch}-same` } })).toBe(0);
			expect(await service.adapter.count({ query: { note: { $in: ["v3", "v4"] } } })).toBe(0);
		},
	);
});

describe("cached reads", () => {
	const Cached = {
		name: "cachedstore",
		mixins: [DbMixin({ collection: `cachedstore_${process.pid}`, schema: { name: String } })],
		actions: { read: { cache: { keys: ["id"] }, handler: () => "read" } },
	};
	const Uncached = {
		name: "uncachedstore",
		mixins: [DbMixin({ collection: `uncachedstore_${process.pid}`, schema: { name: String } })],
		actions: { read: () => "read" },
	};

	it("are dropped on every change by the service that caches them, and a service that caches none broadcasts nothing", async () => {
		const broker = await startBroker([Cached, Uncached]);
		try {
			const listeners = (broker.registry.getEventList({ skipInternal: true }) as Array<{ name: string }>)
				.map(event => event.name)
				.filter(name => name.startsWith("cache.clean."));
			expect(listeners).toEqual(["cache.clean.cachedstore"]); // its own broadcast only: no wildcard
			const cachedKeys = async () =>
				(await broker.cacher!.getCacheKeys())
					.map((entry: { key: string }) => entry.key)
					.filter((key: string) => key.startsWith("cachedstore."));
			const broadcast = jest.spyOn(broker, "broadcast");
			await broker.call("cachedstore.read", { id: "a" });
			expect(await cachedKeys()).toHaveLength(1);
			await (broker.getLocalService("uncachedstore") as any).entityChanged("updated", {}, null);
			expect(broadcast).not.toHaveBeenCalled();
			await (broker.getLocalService("cachedstore") as any).entityChanged("updated", {}, null);
			expect(broadcast.mock.calls.map(([event]) => event)).toEqual(["cache.clean.cachedstore"]);
			expect(await cachedKeys()).toEqual([]);
		} finally {
			await broker.stop();
		}
	});
});
