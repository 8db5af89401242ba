/**
 * Caching across replicas (README "Caching": "every change cleans the service's cache on every
 * node that runs it"): each node caches the reads it serves in its own memory cacher, and a write
 * on one node broadcasts `cache.clean.<service>`, which the db mixin's handler
 * (platform/db.mixin.ts) turns into a clean of that service's cache on every other node.
 *
 * Two products nodes share a store only on MongoDB (on the embedded store a second instance
 * refuses to start), so this runs in the "mongodb" project only.
 */
import mongoose from "mongoose";
import type { ServiceBroker } from "moleculer";
import { TestCluster } from "../helpers/brokers";
import { Faults } from "../helpers/faults";
import { waitFor } from "../helpers/process";
import { describeOnMongo } from "../helpers/store";
import ProductsService from "../../services/products/products.service";

describeOnMongo(
	"two products nodes sharing the store [MongoDB only: on NeDB a second products node refuses to start]",
	() => {
		const cluster = new TestCluster();
		const writerFaults = new Faults();
		const readerFaults = new Faults();
		let writer: ServiceBroker;
		let reader: ServiceBroker;
		let product: any;

		beforeAll(async () => {
			writer = await cluster.start("products-writer", [ProductsService], writerFaults);
			reader = await cluster.start("products-reader", [ProductsService], readerFaults);
			await waitFor(
				async () => writer.registry.getActionEndpoints("products.get")?.count() === 2,
				30_000,
				"both nodes to see both products services",
			);
			product = (await reader.call<any, any>("products.list", { q: "mug" })).rows[0];
		});
		beforeEach(() => {
			writerFaults.reset();
			readerFaults.reset();
		});
		afterAll(() => cluster.stop());

		/** Read on the reader node until `check` holds for what it answers: the reads it cached must be cleaned for that. */
		const readerSees = (action: string, params: object, check: (answer: any) => boolean) =>
			waitFor(async () => check(await reader.call(action, params)), 5_000, `the reader's ${action} to be fresh`);

		it("cleans the cached reads of the other node when one changes a product", async () => {
			// The reader caches a product page and a list (each served by its own products service, preferring local).
			for (let i = 0; i < 2; i++) {
				await reader.call("products.get", { id: product.id });
				await reader.call("products.list", { q: product.sku });
			}
			expect([readerFaults.runs("products.get"), readerFaults.runs("products.list")]).toEqual([1, 1]); // cached
			expect(writerFaults.runs("products.get")).toBe(0);

			const price = product.price + 100;
			await writer.call("products.update", { id: product.id, price });
			expect([writerFaults.runs("products.update"), readerFaults.runs("products.update")]).toEqual([1, 0]);

			await readerSees("products.get", { id: product.id }, answer => answer.price === price);
			await readerSees("products.list", { q: product.sku }, answer => answer.rows[0]?.price === price);
			expect([readerFaults.runs("products.get"), readerFaults.runs("products.list")]).toEqual([2, 2]); // read again
		});

		it("cleans them when stock moves on the other node", async () => {
			const { stock } = await reader.call<any, any>("products.get", { id: product.id }); // cached on the reader
			const orderId = new mongoose.Types.ObjectId().toHexString();
			const items = [{ productId: product.id, quantity: 1 }];
			await writer.call("products.reserveStock", { orderId, items });
			await readerSees("products.get", { id: product.id }, answer => answer.stock === stock - 1);
			await writer.call("products.releaseStock", { orderId, items });
			await readerSees("products.get", { id: product.id }, answer => answer.stock === stock);
		});
	},
);
