/** The db mixin's guard: on the embedded store a stateful service runs on one node only. */
import { ServiceBroker } from "moleculer";
import brokerConfig from "../../moleculer.config";
import ProductsService from "../../services/products/products.service";
import PricingService from "../../services/pricing/pricing.service";
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
