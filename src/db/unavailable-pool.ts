import type { PostgresPool, PostgresPoolClient } from 'kysely';
import { asUnavailable } from './connection-errors.js';

/**
 * The pool kysely runs on, with every connection failure (checking a client out, or a query on
 * one) thrown as an UnavailableError, so the API answers 503 instead of 500. Errors in the
 * statement itself (constraint violations, syntax) pass through unchanged.
 */
export function unavailableOnConnectionLoss(pool: PostgresPool): PostgresPool {
  // kysely keys its connection state by client object: hand out one wrapper per client.
  const wrappers = new WeakMap<PostgresPoolClient, PostgresPoolClient>();
  const wrap = (client: PostgresPoolClient): PostgresPoolClient => {
    let wrapper = wrappers.get(client);
    if (wrapper === undefined) {
      wrapper = {
        query: ((sqlOrCursor: unknown, parameters?: ReadonlyArray<unknown>) => {
          if (typeof sqlOrCursor !== 'string') return (client.query as (c: unknown) => unknown)(sqlOrCursor);
          return client
            .query(sqlOrCursor, parameters ?? [])
            .catch((err: unknown) => Promise.reject(asUnavailable(err)));
        }) as PostgresPoolClient['query'],
        release: (destroy) => client.release(destroy),
      };
      wrappers.set(client, wrapper);
    }
    return wrapper;
  };
  return {
    connect: () => pool.connect().then(wrap, (err: unknown) => Promise.reject(asUnavailable(err))),
    end: () => pool.end(),
  };
}
