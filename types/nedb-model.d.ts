/** The few functions of NeDB's document model (its own semantics of paths, matching and order) the embedded store adapter uses. */
declare module "@seald-io/nedb/lib/model.js" {
	/** The value at a dotted path; through an array, the array of each element's value. */
	export function getDotValue(obj: object, field: string): unknown;
	/** Whether a document matches a query, as NeDB's finds decide it. */
	export function match(obj: object, query: object): boolean;
	/** NeDB's order of any two values (the order of its sorts and of its index trees). */
	export function compareThings(a: unknown, b: unknown): number;
	/** A copy of a document, as NeDB's finds answer it. */
	export function deepCopy<T>(obj: T): T;
	/** One document as one datafile line (NeDB's JSON, with its `$$date` form of dates). */
	export function serialize(doc: object): string;
	/** A datafile line back as a document. */
	export function deserialize(line: string): object;
}

/** NeDB's index of one field: the adapter keeps its update as the path for a document whose key changes. */
declare module "@seald-io/nedb/lib/indexes.js" {
	export default class Index {
		/** Take the old version(s) out of the index and put the new one(s) in, rolling back on a unique key. */
		update(oldDoc: object | Array<{ oldDoc: object; newDoc: object }>, newDoc?: object): void;
	}
}
