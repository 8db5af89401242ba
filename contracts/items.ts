/** Order lines as services exchange them: a product id and a quantity, and the rules every service checks them by. */
import { idParam } from "../platform/params";

/** A requested line: which product and how many. */
export interface ItemRequest {
	productId: string;
	quantity: number;
}

export const MAX_QUANTITY = 1000;
export const MAX_LINES = 50;

/** How many units of one product: a whole number from 1 to MAX_QUANTITY. */
export const quantityParam = { type: "number", integer: true, positive: true, max: MAX_QUANTITY } as const;

/** A list of `{ productId, quantity }` lines. */
export const itemsParam = {
	type: "array",
	min: 1,
	max: MAX_LINES,
	items: {
		type: "object",
		strict: true,
		props: { productId: idParam, quantity: quantityParam },
	},
} as const;

/** One line per product, in first-seen order, quantities added up. */
export function mergeItems(items: ItemRequest[]): ItemRequest[] {
	const byProduct = new Map<string, number>();
	for (const { productId, quantity } of items) byProduct.set(productId, (byProduct.get(productId) ?? 0) + quantity);
	return [...byProduct].map(([productId, quantity]) => ({ productId, quantity }));
}

/**
 * What products broadcasts as `cache.clean.products` when only the stock of some products changed (a
 * reservation, a release, a restock). moleculer-db's own broadcast carries nothing: every product may
 * have changed.
 */
export interface ProductsCleaned {
	productIds: string[];
}
