/** Prices requested lines from catalog products: the catalog's price, never the client's. */
import type { ItemRequest } from "./types";

export interface CatalogProduct {
	id: string;
	sku: string;
	name: string;
	price: number;
	currency: string;
}

export interface PricedLine {
	productId: string;
	sku: string;
	name: string;
	unitPrice: number;
	quantity: number;
	lineTotal: number;
}

export interface PricedLines {
	items: PricedLine[];
	currency: string;
	/** Requested product ids the catalog does not have. */
	missing: string[];
	/** More than one currency among the lines: such lines cannot be added up. */
	mixedCurrencies: boolean;
}

export const DEFAULT_CURRENCY = "USD";

/** One line per product, in first-seen order, quantities added up. */
export function mergeItems(items: ItemRequest[]): ItemRequest[] {
	const byProduct = new Map<string, number>();
	for (const { productId, quantity } of items) byProduct.set(productId, (byProduct.get(productId) ?? 0) + quantity);
	return [...byProduct].map(([productId, quantity]) => ({ productId, quantity }));
}

/** Integer cents in, integer cents out. */
export function priceLines(items: ItemRequest[], products: CatalogProduct[]): PricedLines {
	const byId = new Map(products.map(p => [p.id, p]));
	const lines: PricedLine[] = [];
	const missing: string[] = [];
	for (const { productId, quantity } of items) {
		const product = byId.get(productId);
		if (!product) {
			missing.push(productId);
			continue;
		}
		lines.push({ productId, sku: product.sku, name: product.name, unitPrice: product.price, quantity, lineTotal: product.price * quantity });
	}
	const currencies = new Set(lines.map(line => byId.get(line.productId)!.currency));
	return {
		items: lines,
		currency: currencies.size === 1 ? [...currencies][0] : DEFAULT_CURRENCY,
		missing,
		mixedCurrencies: currencies.size > 1,
	};
}
