/** The db mixin's guard (on the embedded store a stateful service runs on one node only), and the embedded store's datafile. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ServiceBroker } from "moleculer";
import brokerConfig from "../../moleculer.config";
import ProductsService from "../../services/products/products.service";
import PricingService from "../../services/pricing/pricing.service";
import { EmbeddedStoreAdapter } from "../../platform/store-adapters";
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
