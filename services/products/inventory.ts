/**
 * The inventory half of the products service: how stock moves.
 *
 * Stock moves only through the actions below, each made of conditional
 * atomic updates of one product document (`stock >= quantity` in the
 * filter), so stock never goes below zero, whatever the number of concurrent
 * checkouts or nodes. Each product records what every open order holds of it
 * (`reservations.<orderId>: quantity`), which makes reserving and releasing
 * idempotent per order. A paid order's hold is committed (the entry goes, the
 * stock stays taken); an order cancelled after payment gives its units back
 * once (`restocked.<orderId>: {quantity, at}`). Taking stock across
 * LOW_STOCK_THRESHOLD writes a `stock.low` event in the same update (outbox).
 *
 * A product document stays small whatever the number of orders: a reservation
 * lives only while its order is open (committed or released when it settles),
 * and a restock marker only for RESTOCK_MEMORY_MS, after which the next restock
 * of the product drops it in its own write. The embedded store appends the
 * whole document on every write, so a map growing with orders would make every
 * checkout of a popular product write more.
 */
import { config } from "../../platform/config";
import { conflict } from "../../contracts/errors";
import { domainEvent } from "../../contracts/events";
import type { ShopContext } from "../../contracts/context";
import { type ItemRequest, itemsParam, mergeItems, type ProductsCleaned } from "../../contracts/items";
import { countMetric } from "../../platform/metrics";
import { idParam } from "../../platform/params";
import type { ActionsFor } from "../../platform/schema";
import type { ProductsThis } from "./products.service";

/** What the inventory reads of a product document. */
interface StockDoc {
	sku: string;
	name: string;
	stock: number;
	reservations?: Record<string, number>;
	/** Orders whose units came back; a bare number is a marker from before markers were dated (kept). */
	restocked?: Record<string, RestockMarker | number>;
}

interface RestockMarker {
	quantity: number;
	at: Date;
}

/**
 * How long a product remembers that an order's units came back. restockOrder runs
 * only while its order is `cancelling`, which the recovery sweep finishes within
 * ORDER_RECOVERY_AFTER_MS of a failure once the services answer; a week covers any
 * outage short of the orders store being down for a week (and the redelivery
 * horizon of every event, kept 7 days). An older marker is dropped by the next restock.
 */
const RESTOCK_MEMORY_MS = 7 * 24 * 3_600_000;

/** The restock markers of `doc` older than RESTOCK_MEMORY_MS at `now`, as update paths. */
function expiredRestocks(doc: StockDoc, now: Date): string[] {
	return Object.entries(doc.restocked ?? {})
		.filter(
			([, marker]) =>
				typeof marker === "object" && now.getTime() - new Date(marker.at).getTime() > RESTOCK_MEMORY_MS,
		)
		.map(([orderId]) => `restocked.${orderId}`);
}

export interface InventoryMethods {
	shortItems(items: ItemRequest[]): Promise<Array<ItemRequest & { available: number }>>;
	takeStock(orderId: string, items: ItemRequest[]): Promise<ItemRequest[]>;
	takeLine(orderId: string, item: ItemRequest): Promise<boolean>;
	returnStock(orderId: string, items: ItemRequest[]): Promise<ItemRequest[]>;
	/**
	 * The stock of these products may have changed: every node drops what it cached of products (as
	 * moleculer-db's `clearCache` has them do), and each gateway's catalog drops its pages of these
	 * products and its lists, but keeps the pages of every other product.
	 */
	stockChanged(items: ItemRequest[]): Promise<void>;
}

/**
 * Lines merged per product and sorted by product id: concurrent orders take
 * shared products in the same order, so they cannot block each other.
 */
function byProductId(items: ItemRequest[]): ItemRequest[] {
	return mergeItems(items).sort((a, b) => (a.productId < b.productId ? -1 : a.productId > b.productId ? 1 : 0));
}

/** The inventory actions of the products service. */
export const inventoryActions: ActionsFor<ProductsThis> = {
	/**
	 * Take stock for an order: every line, or none. When a line is short, the
	 * lines already taken are put back and a 409 lists the short items.
	 * Idempotent per order: lines this order already holds are not taken twice.
	 */
	reserveStock: {
		visibility: "public",
		// A retry could run beside a timed-out attempt that is still taking lines for the same order.
		retryPolicy: { enabled: false },
		params: { $$strict: true, orderId: idParam, items: itemsParam },
		async handler(ctx: ShopContext<{ orderId: string; items: ItemRequest[] }>) {
			const { orderId } = ctx.params;
			const items = byProductId(ctx.params.items);
			try {
				const taken = await this.takeStock(orderId, items);
				if (taken.length < items.length) {
					await this.returnStock(orderId, taken);
					countMetric(this.broker, "stockRefused");
					throw conflict("Not enough stock", "OUT_OF_STOCK", { items: await this.shortItems(items) });
				}
				return { orderId, items };
			} finally {
				await this.stockChanged(items);
			}
		},
	},

	/**
	 * Give back what an order holds (it failed, was abandoned or cancelled).
	 * Idempotent: only lines the order still holds are returned, once.
	 */
	releaseStock: {
		visibility: "public",
		params: { $$strict: true, orderId: idParam, items: itemsParam },
		async handler(ctx: ShopContext<{ orderId: string; items: ItemRequest[] }>) {
			try {
				const returned = await this.returnStock(ctx.params.orderId, byProductId(ctx.params.items));
				return { orderId: ctx.params.orderId, items: returned };
			} finally {
				await this.stockChanged(ctx.params.items);
			}
		},
	},

	/** The order is paid: its hold becomes a sale (the stock stays taken, the reservation entry goes). Idempotent. */
	commitStock: {
		visibility: "public",
		params: { $$strict: true, orderId: idParam, items: itemsParam },
		async handler(ctx: ShopContext<{ orderId: string; items: ItemRequest[] }>) {
			const reservation = `reservations.${ctx.params.orderId}`;
			for (const item of byProductId(ctx.params.items)) {
				if (!this.isValidId(item.productId)) continue;
				await this.adapter.updateMany(
					{ _id: this.decodeID(item.productId), [reservation]: { $exists: true } },
					{ $unset: { [reservation]: true } },
				);
			}
			return { orderId: ctx.params.orderId };
		},
	},

	/**
	 * A paid order was cancelled: put its units back on the shelf, once per order (the marker, written with
	 * the units, says so for RESTOCK_MEMORY_MS); markers older than that go in the same write.
	 */
	restockOrder: {
		visibility: "public",
		params: { $$strict: true, orderId: idParam, items: itemsParam },
		async handler(ctx: ShopContext<{ orderId: string; items: ItemRequest[] }>) {
			const marker = `restocked.${ctx.params.orderId}`;
			const restocked: ItemRequest[] = [];
			try {
				for (const item of byProductId(ctx.params.items)) {
					if (!this.isValidId(item.productId)) continue;
					const _id = this.decodeID(item.productId);
					const doc = (await this.adapter.findById(_id)) as StockDoc | null;
					if (!doc) continue;
					const now = new Date();
					const expired = expiredRestocks(doc, now);
					const restock: RestockMarker = { quantity: item.quantity, at: now };
					const count = await this.adapter.updateMany(
						{ _id, [marker]: { $exists: false } },
						{
							$inc: { stock: item.quantity },
							$set: { [marker]: restock, updatedAt: now },
							...(expired.length && { $unset: Object.fromEntries(expired.map(path => [path, true])) }),
						},
					);
					if (count === 1) restocked.push(item);
				}
				return { orderId: ctx.params.orderId, items: restocked };
			} finally {
				await this.stockChanged(ctx.params.items);
			}
		},
	},
};

/** How stock moves, one conditional atomic update at a time. */
export const inventoryMethods: InventoryMethods & ThisType<ProductsThis> = {
	async stockChanged(items: ItemRequest[]) {
		const productIds = [...new Set(items.map(item => item.productId))];
		this.broker.broadcast("cache.clean.products", { productIds } satisfies ProductsCleaned);
		await this.broker.cacher?.clean(`${this.fullName}.**`);
	},

	/** Take each line (see takeLine). Stops at the first short line; returns the lines the order now holds. */
	async takeStock(orderId: string, items: ItemRequest[]) {
		const held: ItemRequest[] = [];
		for (const item of items) {
			if (!this.isValidId(item.productId) || !(await this.takeLine(orderId, item))) break;
			held.push(item);
		}
		return held;
	},

	/**
	 * Take one line with one conditional atomic update: enough stock, and no
	 * reservation of this order yet. When it brings the stock from above the
	 * low-stock threshold to at or below it, the update is conditional on the
	 * exact stock read and carries the `stock.low` event; otherwise it is
	 * conditional on staying on the same side of the threshold. A concurrent
	 * change makes it read and try again. False when the stock is short.
	 */
	async takeLine(orderId: string, { productId, quantity }: ItemRequest) {
		const _id = this.decodeID(productId);
		const reservation = `reservations.${orderId}`;
		const threshold = config.lowStockThreshold;
		for (;;) {
			const doc = (await this.adapter.findById(_id)) as StockDoc | null;
			const held = doc?.reservations?.[orderId];
			if (held !== undefined) return held === quantity;
			if (!doc || doc.stock < quantity) return false;
			const left = doc.stock - quantity;
			const crossing = left <= threshold && doc.stock > threshold;
			const event =
				crossing &&
				domainEvent("stock.low", { productId, sku: doc.sku, name: doc.name, stock: left, threshold });
			// The condition keeps the outcome on the side of the threshold this read saw, so no crossing goes unnoticed.
			const stock = crossing
				? doc.stock
				: doc.stock > threshold
					? { $gte: threshold + quantity + 1 }
					: { $gte: quantity, $lte: threshold };
			const taken = await this.updateWithEvents(
				{ _id, stock, [reservation]: { $exists: false } },
				{ $inc: { stock: -quantity }, $set: { [reservation]: quantity, updatedAt: new Date() } },
				event ? [event] : [],
			);
			if (taken === 1) return true;
		}
	},

	/** Return the lines this order holds, each with one conditional atomic update. */
	async returnStock(orderId: string, items: ItemRequest[]) {
		const returned: ItemRequest[] = [];
		const reservation = `reservations.${orderId}`;
		for (const item of items) {
			if (!this.isValidId(item.productId)) continue;
			const count = await this.adapter.updateMany(
				{ _id: this.decodeID(item.productId), [reservation]: item.quantity },
				{ $inc: { stock: item.quantity }, $unset: { [reservation]: true }, $set: { updatedAt: new Date() } },
			);
			if (count === 1) returned.push(item);
		}
		return returned;
	},

	/** The requested lines that the current stock cannot cover, with what is available. */
	async shortItems(items: ItemRequest[]) {
		const docs = (await this.adapter.findByIds(
			items.filter(i => this.isValidId(i.productId)).map(i => this.decodeID(i.productId)),
		)) as Array<StockDoc & { _id: unknown }>;
		const stock = new Map(docs.map(doc => [String(doc._id), doc.stock]));
		return items
			.map(item => ({ ...item, available: stock.get(item.productId) ?? 0 }))
			.filter(item => item.available < item.quantity);
	},
};
