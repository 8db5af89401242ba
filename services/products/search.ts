/**
 * Text search of the catalog, through an index rather than a scan.
 *
 * A search matches the products whose name, description or SKU contains the
 * searched text, whatever the case (a regular expression of the literal text).
 * Asking that of every product scans the whole catalog on every search, so each
 * product also keeps its search keys, `searchGrams`: every three-character
 * sequence of its lowercased name, description and SKU, indexed on both stores.
 * A product containing the searched text contains each of its three-character
 * sequences, so the search asks the index for the products with one of them (the
 * rarest-looking) and keeps those the regular expression matches: the same
 * products as the scan, from a few candidates. Text shorter than three characters,
 * or with characters beyond ASCII (whose case rules are not those of
 * `toLowerCase`), is still matched by the scan.
 */

/** What a product's search keys are made of. */
export interface Searchable {
	name: string;
	description?: string;
	sku: string;
}

const GRAM = 3;
/** Letters from the most to the least frequent in English: a later letter makes a rarer sequence. */
const LETTERS = "etaoinshrdlcumwfgypbvkjxqz";
const ASCII = /^[\x20-\x7e]*$/;

function escapeRegExp(text: string): string {
	return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** The distinct three-character sequences of `text`, lowercased. */
function grams(text: string): string[] {
	const lower = text.toLowerCase();
	const found = new Set<string>();
	for (let i = 0; i + GRAM <= lower.length; i++) found.add(lower.slice(i, i + GRAM));
	return [...found];
}

/** A product's search keys (stored as `searchGrams`): the sequences of each field, apart. */
export function searchKeys(product: Searchable): string[] {
	return [...new Set([product.name, product.description ?? "", product.sku].flatMap(grams))];
}

/** How rare a sequence looks: rare letters count most, digits a lot, spaces and punctuation nothing. */
function rarity(gram: string): number {
	let score = 0;
	for (const char of gram) {
		const rank = LETTERS.indexOf(char);
		score += rank >= 0 ? rank + 1 : /[0-9]/.test(char) ? LETTERS.length : 0;
	}
	return score;
}

/** The store filter of a search for `text` (trimmed, not empty). */
export function searchFilter(text: string): Record<string, unknown> {
	const pattern = new RegExp(escapeRegExp(text), "i");
	const filter: Record<string, unknown> = {
		$or: [{ name: { $regex: pattern } }, { description: { $regex: pattern } }, { sku: { $regex: pattern } }],
	};
	if (text.length < GRAM || !ASCII.test(text)) return filter;
	const [rarest] = grams(text).sort((a, b) => rarity(b) - rarity(a));
	return { ...filter, searchGrams: rarest };
}
