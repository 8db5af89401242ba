/**
 * Types for a service written in more than one module: the actions or methods one
 * module contributes, checked against the `this` of the service they belong to.
 */
import type { ServiceSchema } from "moleculer";

/** Actions of a service whose handlers see `TThis`. */
export type ActionsFor<TThis> = NonNullable<ServiceSchema<object, object, object, TThis>["actions"]>;
