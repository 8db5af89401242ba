/**
 * Fill an embedded store (the NeDB files of DATA_DIR) with a shop that has been
 * trading for a year: for measuring how moleshop behaves with data in it
 * (`npm run bench`, profiling), not for tests of behaviour.
 *
 * It writes the datafiles directly, one document per line in NeDB's own format
 * (dates as `{"$$date": ms}`), as the services would have left them: products of
 * varied names, categories and prices (the demo catalog among them), customers
 * who can log in (SEED_PASSWORD), carts, and orders in their final states
 * (paid, payment_failed, cancelled) with their ledger entries, the provider's
 * records, invoices under one counter, analytics facts and notifications, their
 * outboxes relayed (empty). Cancelled orders leave their `restocked.<orderId>`
 * markers on the products, as products.restockOrder writes them, and products
 * their search keys (services/products/search.ts). Everything is
 * drawn from a seeded generator, so one size gives the same store every time
 * (its times relative to now; the password hash has its own salt).
 * Writing files is what makes it fast (100,000 orders in a few seconds): the
 * services load them at start like any other datafile.
 *
 * The collections it writes are replaced; start nodes on the folder afterwards.
 *
 *   node dist/scripts/seed.js <dataDir> <orders> <products> [users]
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import argon2 from "argon2";
import { domainEvent, type DomainEvent, type EventPayloads, type EventType } from "../contracts/events";
import type { PricedLine, Quote } from "../contracts/pricing";
import { factOf } from "../services/analytics/facts";
import {
	orderCancelled,
	orderConfirmation,
	partFor,
	paymentFailed,
	welcome,
	type Rendered,
	type TemplateName,
} from "../services/notifications/templates";
import { DEFAULT_COUNTRIES, DEFAULT_DISCOUNT_CODES, quote } from "../services/pricing/quote";
import { eventLines } from "../services/orders/order";
import { DEMO_CATALOG } from "../services/products/demo-catalog";
import type { Product } from "../services/products/products.service";
import { searchKeys } from "../services/products/search";

/** The password of every seeded account (customers `seed-user-<n>@moleshop.test`, and SEED_ADMIN_EMAIL). */
export const SEED_PASSWORD = "correct horse battery";
export const SEED_ADMIN_EMAIL = "seed-admin@moleshop.test";
/** The email of the n-th seeded customer (0-based). */
export const seedUserEmail = (n: number) => `seed-user-${n}@moleshop.test`;

export interface SeedSizes {
	orders: number;
	products: number;
	/** Customers (default: one per ten orders, at least one). */
	users?: number;
	/** `product.viewed` facts in analytics (default: one per order). */
	views?: number;
}

const DAY_MS = 86_400_000;
const RULES = { countries: DEFAULT_COUNTRIES, freeShippingFrom: 10_000, discountCodes: DEFAULT_DISCOUNT_CODES };
const COUNTRIES = ["US", "US", "US", "US", "CA", "GB", "DE", "FR", "NL", "ES", "IT"];
const CARD = { visa: { brand: "visa", last4: "4242" }, declined: { brand: "visa", last4: "0002" } };
const DECLINED = { failureCode: "card_declined", failureMessage: "Your card was declined." };

const NOUNS: Record<string, string[]> = {
	kitchen: ["Mug", "Bottle", "Plate", "Bowl", "Kettle", "Teapot", "Spoon Set", "Cutting Board", "Travel Mug"],
	apparel: ["T-Shirt", "Hoodie", "Cap", "Socks", "Scarf", "Jacket", "Beanie", "Polo"],
	stationery: ["Notebook", "Pen Set", "Pencil Case", "Planner", "Marker Set", "Sketchbook"],
	accessories: ["Sticker Pack", "Keychain", "Tote Bag", "Backpack", "Phone Case", "Lanyard", "Pin Badge"],
	home: ["Desk Lamp", "Cushion", "Candle", "Blanket", "Wall Clock", "Poster", "Coaster Set"],
	electronics: ["Charger", "USB Cable", "Speaker", "Headphones", "Mouse", "Keyboard", "Power Bank"],
};
const ADJECTIVES = [
	"Classic",
	"Cluster",
	"Broker",
	"Mole",
	"Async",
	"Retro",
	"Minimal",
	"Vintage",
	"Eco",
	"Deluxe",
	"Compact",
	"Midnight",
	"Sunny",
	"Arctic",
	"Urban",
	"Pocket",
	"Stream",
	"Node",
	"Circuit",
	"Cosy",
];
const MATERIALS = [
	"ceramic",
	"steel",
	"bamboo",
	"organic cotton",
	"recycled plastic",
	"glass",
	"oak",
	"wool",
	"aluminium",
];
const FEATURES = [
	"made to last",
	"with the mole logo",
	"for long debugging nights",
	"that survives a network partition",
	"in a gift box",
	"dishwasher safe",
	"with a lifetime warranty",
	"for your next deploy",
];
const FIRST_NAMES = ["Ada", "Grace", "Linus", "Ken", "Barbara", "Dennis", "Margaret", "Alan", "Frances", "Edsger"];
const LAST_NAMES = ["Lovelace", "Hopper", "Torvalds", "Thompson", "Liskov", "Ritchie", "Hamilton", "Turing", "Allen"];

/** mulberry32: small, fast and seeded, so a size always gives the same store. */
function generator(seed: number) {
	let state = seed >>> 0;
	const next = () => {
		state = (state + 0x6d2b79f5) >>> 0;
		let t = state;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
	};
	const int = (min: number, max: number) => min + Math.floor(next() * (max - min + 1));
	const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)];
	const chars = (alphabet: string, length: number) => {
		let text = "";
		for (let i = 0; i < length; i++) text += alphabet[Math.floor(next() * alphabet.length)];
		return text;
	};
	const uuid = () => {
		const hex = chars("0123456789abcdef", 32);
		return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20)}`;
	};
	return { next, int, pick, chars, uuid };
}

type Random = ReturnType<typeof generator>;

/** An id as NeDB makes them: 16 letters and digits. */
const nedbId = (random: Random) => random.chars("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", 16);

/** A document's value as NeDB stores it: dates become `{"$$date": ms}` (NeDB's serialize does the same). */
function stored(value: unknown): unknown {
	if (value instanceof Date) return { $$date: value.getTime() };
	if (Array.isArray(value)) return value.map(stored);
	if (value === null || typeof value !== "object") return value;
	const out: Record<string, unknown> = {};
	for (const key in value) out[key] = stored((value as Record<string, unknown>)[key]);
	return out;
}

/** One document as NeDB writes it to its datafile: a line of JSON (without a replacer, JSON.stringify stays fast). */
const serialize = (doc: object): string => JSON.stringify(stored(doc));

/** Lines to one datafile, written in large chunks. */
class Datafile {
	private readonly fd: number;
	private chunk: string[] = [];
	count = 0;

	constructor(dataDir: string, collection: string) {
		fs.rmSync(path.join(dataDir, `${collection}.db~`), { force: true });
		this.fd = fs.openSync(path.join(dataDir, `${collection}.db`), "w");
	}

	write(doc: object) {
		this.chunk.push(serialize(doc));
		this.count++;
		if (this.chunk.length >= 2_000) this.flush();
	}

	flush() {
		if (this.chunk.length) fs.writeSync(this.fd, `${this.chunk.join("\n")}\n`);
		this.chunk = [];
	}

	close() {
		this.flush();
		fs.closeSync(this.fd);
	}
}

/** A product as the store keeps it, with what cancelled orders left on it. */
type SeedProduct = Omit<Product, "id"> & { _id: string; restocked?: Record<string, number> };

interface SeedUser {
	_id: string;
	name: string;
	email: string;
	createdAt: Date;
}

function makeProducts(random: Random, count: number, start: number): SeedProduct[] {
	const products: SeedProduct[] = [];
	const skus = new Set<string>();
	for (let i = 0; i < count; i++) {
		const demo = DEMO_CATALOG[i];
		const createdAt = new Date(start + random.next() * (Date.now() - start) * 0.5);
		const at = { createdAt, updatedAt: new Date(createdAt.getTime() + random.int(0, 30) * DAY_MS) };
		if (demo) {
			products.push({ _id: nedbId(random), ...demo, stock: 100_000, ...at });
			skus.add(demo.sku);
			continue;
		}
		const category = random.pick(Object.keys(NOUNS));
		const noun = random.pick(NOUNS[category]);
		const adjective = random.pick(ADJECTIVES);
		const material = random.pick(MATERIALS);
		let sku: string;
		do
			sku = `${noun
				.replace(/[^A-Za-z]/g, "")
				.slice(0, 4)
				.toUpperCase()}-${random.int(10_000, 99_999_999)}`;
		while (skus.has(sku));
		skus.add(sku);
		products.push({
			_id: nedbId(random),
			sku,
			name: `${adjective} ${noun}${random.next() < 0.3 ? ` ${random.int(2, 9)}00` : ""}`,
			description: `A ${material} ${noun.toLowerCase()} ${random.pick(FEATURES)}.`,
			price: random.int(2, 200) * 100 - random.pick([1, 1, 5, 49]),
			currency: "USD",
			category,
			stock: random.int(1_000, 100_000),
			...at,
		});
	}
	return products;
}

/** Store the documents of a collection. */
function writeAll(dataDir: string, collection: string, docs: Iterable<object>): number {
	const file = new Datafile(dataDir, collection);
	for (const doc of docs) file.write(doc);
	file.close();
	return file.count;
}

/**
 * Fill `dataDir` with `sizes.orders` orders in final states over `sizes.products`
 * products (and their customers, ledger, invoices, analytics and notifications),
 * replacing the collections it writes. Resolves once every file is written.
 */
export async function seedStore(dataDir: string, sizes: SeedSizes): Promise<void> {
	const random = generator(sizes.orders * 31 + sizes.products);
	const productCount = Math.max(DEMO_CATALOG.length, sizes.products);
	const userCount = Math.max(1, sizes.users ?? Math.ceil(sizes.orders / 10));
	const viewCount = sizes.views ?? sizes.orders;
	const now = Date.now();
	const start = now - 365 * DAY_MS;
	fs.mkdirSync(dataDir, { recursive: true });

	const products = makeProducts(random, productCount, start);
	// Some products sell far more than others: the first ones of the list are the hot ones.
	const popular = () => products[Math.floor(productCount * random.next() ** 3)];

	const passwordHash = await argon2.hash(SEED_PASSWORD, {
		type: argon2.argon2id,
		memoryCost: 19_456,
		timeCost: 2,
		parallelism: 1,
	});
	const users: SeedUser[] = [];
	const userDocs = new Datafile(dataDir, "users");
	const carts = new Datafile(dataDir, "carts");
	const analytics = new Datafile(dataDir, "analytics");
	const notifications = new Datafile(dataDir, "notifications");

	/** What consumers keep of an event: the analytics fact, and the customer's email. */
	const consumed = <T extends EventType>(
		event: DomainEvent<T>,
		template: TemplateName,
		user: SeedUser,
		render: (name: string) => Rendered,
	) => {
		if (event.type !== "cart.updated" && event.type !== "stock.low")
			analytics.write(factOf(event as Parameters<typeof factOf>[0]));
		const sentAt = new Date(Date.parse(event.occurredAt) + random.int(50, 2_000));
		notifications.write({
			_id: nedbId(random),
			key: `${event.id}:email:${user._id}`,
			eventId: event.id,
			eventType: event.type,
			template,
			userId: user._id,
			channel: "email",
			to: user.email,
			...partFor(render(user.name), "email"),
			status: "sent",
			attempts: 1,
			createdAt: new Date(Date.parse(event.occurredAt) + random.int(5, 50)),
			updatedAt: sentAt,
			sentAt,
		});
	};
	const eventAt = <T extends EventType>(type: T, data: EventPayloads[T], at: Date) => ({
		...domainEvent(type, data, at),
		id: random.uuid(),
	});

	for (let i = 0; i < userCount + 1; i++) {
		const admin = i === userCount;
		const createdAt = new Date(start + (i / (userCount + 1)) * (now - start) * 0.9);
		const user: SeedUser = {
			_id: random.chars("0123456789abcdef", 24), // an ObjectId, as users.register chooses them
			name: admin ? "Seed Admin" : `${random.pick(FIRST_NAMES)} ${random.pick(LAST_NAMES)}`,
			email: admin ? SEED_ADMIN_EMAIL : seedUserEmail(i),
			createdAt,
		};
		userDocs.write({
			...user,
			passwordHash,
			role: admin ? "admin" : "customer",
			preferences: { channels: ["email"] },
			updatedAt: createdAt,
			outbox: [],
		});
		if (admin) continue;
		users.push(user);
		consumed(eventAt("user.registered", { userId: user._id }, createdAt), "welcome", user, welcome);
		if (random.next() < 0.5) {
			const items: Record<string, number> = {};
			if (random.next() < 0.4) items[popular()._id] = random.int(1, 3);
			carts.write({ _id: nedbId(random), userId: user._id, items, updatedAt: createdAt, outbox: [] });
		}
	}

	const orders = new Datafile(dataDir, "orders");
	const payments = new Datafile(dataDir, "payments");
	const provider = new Datafile(dataDir, "provider_charges");
	const invoices = new Datafile(dataDir, "invoices");
	let invoiceSeq = 0;
	for (let i = 0; i < sizes.orders; i++) {
		const _id = nedbId(random);
		// In time order, up to an hour ago: no order is left in an intermediate state.
		const createdAt = new Date(start + (i / sizes.orders) * (now - start - 3_600_000));
		const later = (from: Date, maxMs: number) => new Date(from.getTime() + random.int(5, maxMs));
		const user = users[Math.floor(random.next() * users.length)];
		const lines = new Map<SeedProduct, number>();
		for (let n = random.int(1, 3); n > 0; n--) lines.set(popular(), random.int(1, 3));
		const items: PricedLine[] = [...lines].map(([product, quantity]) => ({
			productId: product._id,
			sku: product.sku,
			name: product.name,
			unitPrice: product.price,
			quantity,
			lineTotal: product.price * quantity,
		}));
		const country = random.pick(COUNTRIES);
		const code = random.next() < 0.1 ? "WELCOME10" : undefined;
		const priced: Quote = quote(items, "USD", { country, discountCode: code, at: createdAt }, RULES);
		const outcome = random.next();
		const failed = outcome < 0.05;
		const cancelled = outcome > 0.96;
		const reservedAt = later(createdAt, 40);
		const settledAt = later(reservedAt, 200);
		const key = `charge:${_id}`;
		const chargeId = `ch_${random.chars("0123456789abcdef", 24)}`;
		const charge = {
			key,
			amount: priced.total,
			currency: priced.currency,
			status: failed ? "failed" : "succeeded",
			card: failed ? CARD.declined : CARD.visa,
			...(failed && DECLINED),
		};
		provider.write({ _id: nedbId(random), ...charge, kind: "charge", chargeId, createdAt: later(reservedAt, 20) });
		payments.write({
			_id: nedbId(random),
			...charge,
			orderId: _id,
			kind: "charge",
			userId: user._id,
			providerId: chargeId,
			createdAt: later(reservedAt, 10),
			updatedAt: settledAt,
		});
		const order: Record<string, unknown> = {
			_id,
			userId: user._id,
			...priced,
			status: "reserved",
			timeline: [{ status: "reserved", at: reservedAt }],
			paymentMethod: failed ? "pm_card_chargeDeclined" : "pm_card_visa",
			createdAt,
			updatedAt: settledAt,
			...(random.next() < 0.3 && { fromCart: true }),
			...(random.next() < 0.5 && {
				idempotencyKey: `${user._id}:${random.uuid()}`,
				requestHash: createHash("sha256").update(_id).digest("hex"),
			}),
			outbox: [],
		};
		if (failed) {
			const event = eventAt(
				"order.payment_failed",
				{
					orderId: _id,
					userId: user._id,
					total: priced.total,
					currency: priced.currency,
					reason: "card_declined",
				},
				settledAt,
			);
			consumed(event, "payment_failed", user, name => paymentFailed(name, event.data));
			Object.assign(order, {
				status: "payment_failed",
				payment: { status: "failed", ...DECLINED, card: CARD.declined },
			});
			(order.timeline as object[]).push({ status: "payment_failed", at: settledAt, note: "card_declined" });
			orders.write(order);
			continue;
		}
		const number = `INV-${String(++invoiceSeq).padStart(6, "0")}`;
		// The amounts of the quote, as order.paid carries them (not its lines, code or country).
		const { items: _lines, discountCode: _code, country: _country, ...amounts } = priced;
		invoices.write({
			_id: nedbId(random),
			number,
			seq: invoiceSeq,
			orderId: _id,
			userId: user._id,
			...priced,
			issuedAt: later(reservedAt, 100),
		});
		const eventItems = eventLines(priced);
		const paid = eventAt(
			"order.paid",
			{
				orderId: _id,
				userId: user._id,
				items: eventItems,
				...amounts,
				invoiceNumber: number,
				paidAt: settledAt.toISOString(),
			},
			settledAt,
		);
		consumed(paid, "order_confirmation", user, name => orderConfirmation(name, paid.data));
		Object.assign(order, {
			status: "paid",
			invoiceNumber: number,
			paidAt: settledAt,
			payment: { status: "succeeded", card: CARD.visa },
		});
		(order.timeline as object[]).push({ status: "paid", at: settledAt });
		if (cancelled) {
			const cancellingAt = later(settledAt, 3 * DAY_MS);
			const cancelledAt = later(cancellingAt, 300);
			const refundKey = `refund:${_id}`;
			const refundId = `re_${random.chars("0123456789abcdef", 24)}`;
			const refund = { key: refundKey, amount: priced.total, currency: priced.currency, status: "succeeded" };
			provider.write({
				_id: nedbId(random),
				...refund,
				kind: "refund",
				refundId,
				chargeId,
				createdAt: later(cancellingAt, 100),
			});
			payments.write({
				_id: nedbId(random),
				...refund,
				orderId: _id,
				kind: "refund",
				userId: user._id,
				providerId: refundId,
				createdAt: later(cancellingAt, 50),
				updatedAt: later(cancellingAt, 150),
			});
			for (const [product, quantity] of lines) (product.restocked ??= {})[_id] = quantity;
			const event = eventAt(
				"order.cancelled",
				{
					orderId: _id,
					userId: user._id,
					items: eventItems,
					refunded: priced.total,
					currency: priced.currency,
					cancelledAt: cancelledAt.toISOString(),
				},
				cancelledAt,
			);
			consumed(event, "order_cancelled", user, name => orderCancelled(name, event.data));
			Object.assign(order, { status: "cancelled", cancelledAt, refunded: priced.total, updatedAt: cancelledAt });
			(order.timeline as object[]).push(
				{ status: "cancelling", at: cancellingAt, note: "requested by the customer" },
				{ status: "cancelled", at: cancelledAt },
			);
		}
		orders.write(order);
	}
	if (invoiceSeq) invoices.write({ _id: "sequence:invoice", seq: invoiceSeq });

	for (let i = 0; i < viewCount; i++) {
		const at = new Date(start + random.next() * (now - start));
		const user = random.next() < 0.5 ? users[Math.floor(random.next() * users.length)]._id : null;
		analytics.write(factOf(eventAt("product.viewed", { productId: popular()._id, userId: user }, at)));
	}

	writeAll(
		dataDir,
		"products",
		products.map(product => ({ ...product, searchGrams: searchKeys(product) })),
	);
	for (const file of [userDocs, carts, analytics, notifications, orders, payments, provider, invoices]) file.close();
}

if (require.main === module) {
	const [dataDir, orders, products, users] = process.argv.slice(2);
	const count = (value: string | undefined) => (value === undefined ? undefined : Number(value));
	if (!dataDir || !Number.isInteger(count(orders)) || !Number.isInteger(count(products))) {
		console.error("usage: node dist/scripts/seed.js <dataDir> <orders> <products> [users]");
		process.exit(2);
	}
	const started = Date.now();
	seedStore(path.resolve(dataDir), { orders: count(orders)!, products: count(products)!, users: count(users) })
		.then(() => console.log(`Seeded ${path.resolve(dataDir)} in ${((Date.now() - started) / 1000).toFixed(1)} s.`))
		.catch((err: Error) => {
			console.error(err);
			process.exit(1);
		});
}
