/**
 * The MongoDB path's translation layer, offline: the real mongoose model of every
 * collection and the real adapter (platform/store-adapters.ts), with no server for any
 * test but the last. Every stored form of a document becomes the same entity; an
 * undeclared field in a filter, an update or a document is an error; an update that
 * casts to nothing is an error, never an undefined count; malformed ids never reach
 * the store. Runs in the "mongodb" project (jest.config.js), where MONGO_URI is set.
 */
import { ServiceBroker, type Service, type ServiceSchema } from "moleculer";
import mongoose from "mongoose";
import { config } from "../../platform/config";
import { EmbeddedStoreAdapter } from "../../platform/embedded-store";
import { MongoStoreAdapter } from "../../platform/store-adapters";
import { ALL_SERVICES } from "../helpers/shop";
import { takeViolations } from "../helpers/mongo-translation";
import { describeOnMongo } from "../helpers/store";

const { ObjectId } = mongoose.Types;
const at = new Date("2026-11-30T12:00:00.000Z");
const event = (type: string) => ({
	id: "0b6c1c6e-5f0e-4c59-9b9e-6f1f0f5d9d11",
	type,
	version: 1,
	occurredAt: at.toISOString(),
	data: { orderId: "x" },
});
const line = {
	productId: "6b0f3b2dfc50802260c36129",
	sku: "MUG-001",
	name: "Mug",
	unitPrice: 1299,
	quantity: 2,
	lineTotal: 2598,
};

/** One stored document per collection, as the services write them (ObjectId ids, dates, arrays of subdocuments, mixed maps). */
const STORED: Record<string, Record<string, unknown>> = {
	users: {
		name: "Ada",
		email: "ada@x.io",
		passwordHash: "$argon2id$v=19$secret",
		role: "customer",
		phone: "+15550100",
		preferences: { channels: ["email", "sms"] },
		outbox: [event("user.registered")],
		createdAt: at,
		updatedAt: at,
	},
	products: {
		sku: "MUG-001",
		name: "Mug",
		description: "A mug",
		price: 1299,
		currency: "USD",
		category: "kitchen",
		stock: 7,
		reservations: { "6b0f3b2dfc50802260c3612a": 2 },
		restocked: { "6b0f3b2dfc50802260c3612b": 1 },
		outbox: [event("stock.low")],
		createdAt: at,
		updatedAt: at,
	},
	carts: { userId: "6b0f3b2dfc50802260c3612c", items: { "6b0f3b2dfc50802260c36129": 2 }, outbox: [], updatedAt: at },
	orders: {
		userId: "6b0f3b2dfc50802260c3612c",
		items: [line],
		subtotal: 2598,
		discount: 260,
		discountCode: "WELCOME10",
		shipping: 499,
		tax: 0,
		total: 2837,
		currency: "USD",
		country: "US",
		status: "paid",
		timeline: [
			{ status: "reserved", at },
			{ status: "paid", at, note: "ok" },
		],
		paymentMethod: "pm_card_visa",
		payment: { status: "succeeded", card: { brand: "visa", last4: "4242" } },
		invoiceNumber: "INV-000001",
		paidAt: at,
		idempotencyKey: "u:k",
		requestHash: "h",
		outbox: [event("order.paid")],
		createdAt: at,
		updatedAt: at,
	},
	payments: {
		key: "charge:o1",
		orderId: "o1",
		kind: "charge",
		userId: "u1",
		amount: 2837,
		currency: "USD",
		status: "succeeded",
		providerId: "ch_1",
		card: { brand: "visa", last4: "4242" },
		createdAt: at,
		updatedAt: at,
	},
	invoices: {
		number: "INV-000001",
		seq: 1,
		orderId: "o1",
		userId: "u1",
		items: [line],
		subtotal: 2598,
		discount: 0,
		shipping: 499,
		tax: 0,
		total: 3097,
		currency: "USD",
		country: "US",
		issuedAt: at,
	},
	provider_charges: {
		key: "charge:o1",
		kind: "charge",
		chargeId: "ch_1",
		status: "succeeded",
		amount: 2837,
		currency: "USD",
		card: { brand: "visa", last4: "4242" },
		createdAt: at,
	},
	notifications: {
		key: "e:email:u1",
		eventId: "e",
		eventType: "order.paid",
		template: "order_confirmation",
		userId: "u1",
		channel: "email",
		to: "ada@x.io",
		subject: "Thanks",
		body: "Your order",
		status: "sent",
		attempts: 1,
		createdAt: at,
		sentAt: at,
		updatedAt: at,
	},
	analytics: {
		eventId: "e",
		type: "order.paid",
		at,
		day: "2026-11-30",
		userId: "u1",
		orderId: "o1",
		amount: 2837,
		currency: "USD",
		lines: [{ productId: line.productId, sku: "MUG-001", name: "Mug", quantity: 2, lineTotal: 2598 }],
	},
};

/** Everything but the mongoose internals of a value, to see whether it was changed. */
const snapshot = (value: any) => JSON.stringify(value instanceof mongoose.Document ? value.toObject() : value);

/** Paths in `value` that hold something other than plain data: mongoose documents or arrays, ObjectIds. */
function nonPlain(value: unknown, path = ""): string[] {
	if (value instanceof mongoose.Document || value instanceof ObjectId || (value as any)?.isMongooseArray)
		return [path];
	if (value === null || typeof value !== "object" || value instanceof Date) return [];
	return Object.entries(value).flatMap(([key, v]) => nonPlain(v, `${path}.${key}`));
}

describeOnMongo("the MongoDB path, offline", () => {
	const broker = new ServiceBroker({ logger: false, nodeID: `offline-${process.pid}` });
	/** Every stateful service, created (its model compiled, its adapter set up) but never started: nothing connects. */
	const hasStore = (schema: Partial<ServiceSchema>): boolean =>
		!!(schema as { adapter?: unknown }).adapter || !!schema.mixins?.some(hasStore);
	const services = ALL_SERVICES.filter(hasStore).map(
		schema => broker.createService(schema) as Service & Record<string, any>,
	);
	const byCollection = (collection: string) =>
		services.find(s => s.adapter.model.collection.collectionName === collection)!;

	it("has a strict model (documents, updates and filters) and the MongoDB adapter for every collection", () => {
		expect(services.map(s => s.adapter.model.collection.collectionName).sort()).toEqual(Object.keys(STORED).sort());
		for (const service of services) {
			expect(service.adapter).toBeInstanceOf(MongoStoreAdapter);
			const schema = service.adapter.model.schema as mongoose.Schema;
			expect([service.name, schema.get("strict"), schema.get("strictQuery")]).toEqual([
				service.name,
				"throw",
				"throw",
			]);
		}
	});

	describe.each(Object.keys(STORED))("the %s collection", collection => {
		const service = () => byCollection(collection);
		const model = () => service().adapter.model as mongoose.Model<any>;
		const _id = new ObjectId();
		const stored = () => ({ _id, ...STORED[collection] });

		/** What the services can hold of one stored document: a read, the raw driver or lean, plain(), an object built from a document, an insert. */
		const forms = () => {
			const read = model().hydrate(stored());
			const built = { ...read.toObject() };
			for (const [path, value] of Object.entries(read.toObject())) {
				if (Array.isArray(value)) built[path] = read.get(path); // the document's own array (of EmbeddedDocuments)
			}
			return { read, lean: stored(), plain: service().plain(read), built, inserted: new (model())(stored()) };
		};

		it("turns every stored form into the same entity, with a string id and only the public fields", async () => {
			const expected = await service().toEntity(null, model().hydrate(stored()));
			const fields = (service().settings as { fields?: string[] }).fields;
			const shown = Object.keys(STORED[collection]).filter(key => !fields || fields.includes(key));
			expect(Object.keys(expected).sort()).toEqual(
				[...shown, ...(!fields || fields.includes("id") ? ["id"] : [])].sort(),
			);
			for (const key of shown) expect([key, expected[key]]).toEqual([key, STORED[collection][key]]);
			if (!fields || fields.includes("id")) expect(expected.id).toBe(_id.toHexString());
			expect(nonPlain(expected)).toEqual([]);

			for (const [name, form] of Object.entries(forms())) {
				const before = snapshot(form);
				expect([name, await service().toEntity(null, form)]).toEqual([name, expected]);
				expect([name, snapshot(form)]).toEqual([name, before]); // the caller's object is left as it is
			}
			expect(await service().transformDocuments(null, {}, Object.values(forms()))).toEqual(
				Object.values(forms()).map(() => expected),
			);
		});

		it("refuses an undeclared field in a document, a filter or an update, instead of dropping it", async () => {
			const adapter = service().adapter as MongoStoreAdapter;
			const [field, value] = Object.entries(STORED[collection])[0];
			expect(() => new (model())({ ...STORED[collection], notDeclared: 1 })).toThrow(
				/notDeclared.*not in schema/,
			);
			await expect(adapter.updateMany({ _id, notDeclared: 1 }, { $set: { [field]: value } })).rejects.toThrow(
				/notDeclared.*not in schema/,
			);
			await expect(adapter.updateMany({ _id }, { $set: { notDeclared: 1 } })).rejects.toThrow(
				/notDeclared.*not in schema/,
			);
			await expect(adapter.find({ query: { notDeclared: { $exists: true } } })).rejects.toThrow(
				/notDeclared.*not in schema/,
			);
		});

		it("answers an update that casts to nothing with an error, never an undefined count", async () => {
			await expect((service().adapter as MongoStoreAdapter).updateMany({ _id }, {})).rejects.toThrow(
				/cast to nothing/,
			);
			const [field] = Object.keys(STORED[collection]);
			await expect(
				(service().adapter as MongoStoreAdapter).updateMany({ _id }, { $set: { [field]: undefined } }),
			).rejects.toThrow(/cast to nothing/);
			// The error names the fields, never their values (a filter may hold a secret, and errors are logged).
			const error = await (service().adapter as MongoStoreAdapter)
				.updateMany({ _id, [field]: "a-value-never-logged" }, {})
				.catch((err: Error) => err);
			expect((error as Error).message).toMatch(new RegExp(`cast to nothing.*names _id, ${field}`));
			expect((error as Error).message).not.toContain("a-value-never-logged");
		});
	});

	it("draws the next number of a counter again when two first increments meet (one upsert wins, the other gets E11000)", async () => {
		const invoices = byCollection("invoices");
		const increment = jest
			.spyOn(invoices.adapter.model.collection, "findOneAndUpdate")
			.mockRejectedValueOnce(
				new mongoose.mongo.MongoServerError({ message: "E11000 duplicate key error", code: 11000 }),
			)
			.mockResolvedValueOnce({ _id: "sequence:invoice", seq: 7 } as never)
			.mockRejectedValueOnce(new mongoose.mongo.MongoServerError({ message: "not primary", code: 10107 }));
		try {
			expect(await invoices.nextSequence("invoice")).toBe(7);
			expect(increment).toHaveBeenCalledTimes(2);
			await expect(invoices.nextSequence("invoice")).rejects.toMatchObject({ code: 10107 }); // any other error is not retried
			expect(increment).toHaveBeenCalledTimes(3);
		} finally {
			increment.mockRestore();
		}
	});

	it("keeps malformed ids away from the store: not found, never a CastError", async () => {
		for (const service of services) {
			for (const id of [
				"",
				"zzz",
				"not-an-object-id",
				"0123456789ABCDEF01234567",
				"0123456789abcdef0123456",
				"0123456789abcdef012345678",
				"g123456789abcdef01234567",
			]) {
				expect([service.name, id, service.isValidId(id)]).toEqual([service.name, id, false]);
				expect(await service.findEntity(id)).toBeNull();
			}
			expect(service.isValidId(new ObjectId().toHexString())).toBe(true);
		}
	});

	it("catches, in the translation check, what a schema that is not strict would drop", async () => {
		const conn = await mongoose.createConnection(config.mongoUri!).asPromise();
		try {
			const loose = conn.model(
				"loose_translation",
				new mongoose.Schema({ status: String }, { strictQuery: true }),
			);
			await loose.updateMany(
				{ _id: new ObjectId().toHexString(), status: "pending", notDeclared: 1 },
				{ $set: { status: "paid", alsoNotDeclared: 1 } },
			);
			const { violations } = takeViolations();
			expect(violations.map(v => v.problem).sort()).toEqual([
				"filter path 'notDeclared' was dropped",
				"update path '$set.alsoNotDeclared' was dropped",
			]);
			await loose.collection.drop().catch(() => undefined);
		} finally {
			await conn.close();
		}
	});
});

describe("the embedded store's adapter", () => {
	it("converts a copy: the caller's document keeps its _id", async () => {
		const adapter = new EmbeddedStoreAdapter();
		const doc = { _id: "abc", name: "Mug" };
		const converted = await adapter.entityToObject(doc);
		expect(converted).toEqual(doc);
		expect(converted).not.toBe(doc);
	});
});
