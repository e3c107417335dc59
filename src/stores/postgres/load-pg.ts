import type * as Pg from "pg";

/**
 * PgModule is the `pg` driver's module.
 */
export type PgModule = typeof Pg;

let loading: Promise<PgModule> | undefined;

/**
 * loadPg imports the `pg` driver on first use, so that the package root
 * (and every process that never opens a PostgreSQL store) does not load it.
 */
export function loadPg(): Promise<PgModule> {
  loading ??= import("pg").then(
    (module) => ((module as unknown as { default?: PgModule }).default ?? module) as PgModule,
  );
  return loading;
}
