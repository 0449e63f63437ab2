import { describe, expect, it } from 'vitest';
import { asUnavailable, isConnectionError, RETRY_AFTER_S } from '../../../src/db/connection-errors.js';
import { UnavailableError } from '../../../src/domain/errors.js';

const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code });

describe('connection errors', () => {
  it.each([
    ['08006 connection failure', withCode('08006')],
    ['08001 cannot establish a connection', withCode('08001')],
    ['57P01 admin shutdown', withCode('57P01', 'terminating connection due to administrator command')],
    ['57P02 crash shutdown', withCode('57P02')],
    ['57P03 cannot connect now', withCode('57P03', 'the database system is shutting down')],
    ['a refused socket', withCode('ECONNREFUSED')],
    ['a reset socket', withCode('ECONNRESET')],
    ["pg's terminated connection", new Error('Connection terminated unexpectedly')],
    ['a client that lost its connection', new Error('Client has encountered a connection error and is not queryable')],
    ['every address refused', new AggregateError([withCode('ECONNREFUSED'), withCode('ECONNREFUSED')])],
  ])('when the database is unreachable (%s), then the error becomes UnavailableError', (_, err) => {
    expect(isConnectionError(err)).toBe(true);
    const converted = asUnavailable(err);
    expect(converted).toBeInstanceOf(UnavailableError);
    expect((converted as UnavailableError).retryAfterS).toBe(RETRY_AFTER_S);
    expect((converted as UnavailableError).cause).toBe(err);
  });

  it.each([
    ['a unique violation', withCode('23505')],
    ['a syntax error', withCode('42601')],
    ['a query canceled by timeout', withCode('57014')],
    ['a plain error', new Error('boom')],
    ['not an error', 'Connection terminated'],
  ])('when the statement itself failed (%s), then the error passes through unchanged', (_, err) => {
    expect(isConnectionError(err)).toBe(false);
    expect(asUnavailable(err)).toBe(err);
  });
});
