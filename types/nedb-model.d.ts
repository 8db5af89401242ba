/** NeDB's document model (lib/model.js): the serializer its persistence writes every datafile line with. */
declare module "@seald-io/nedb/lib/model.js" {
	/** One document as one datafile line (NeDB's JSON, with its `$$date` form of dates). */
	export function serialize(doc: object): string;
}
