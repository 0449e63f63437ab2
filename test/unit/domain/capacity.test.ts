import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_CAPACITY_MODEL,
  HAPROXY_CAPACITY_FACTORS,
  assertCapacityFactors,
  toResourceVector,
} from '../../../src/domain/capacity.js';
import { assertProperty, scenario } from '../../support/property.js';

describe('capacity conversion', () => {
  it("converts the seed's tenant A (2 vCPU / 4 GB) into 40,000 connections and 20,000 req/s on HAProxy", () => {
    expect(toResourceVector({ vcpu: 2, memoryMb: 4096 }, HAPROXY_CAPACITY_FACTORS)).toEqual({
      connections: 40_000,
      requestsPerSecond: 20_000,
    });
  });

  it('rounds down, so a converted amount never exceeds the resources behind it', () => {
    expect(toResourceVector({ vcpu: 0.001, memoryMb: 1 }, HAPROXY_CAPACITY_FACTORS)).toEqual({
      connections: 9, // 9.77
      requestsPerSecond: 10,
    });
  });

  it('is exact for vCPU with three decimals (0.3 vCPU is 3,000 req/s, not 2,999)', () => {
    for (const vcpu of [0.3, 0.7, 1.1, 2.675, 0.029]) {
      expect(toResourceVector({ vcpu, memoryMb: 0 }, HAPROXY_CAPACITY_FACTORS).requestsPerSecond).toBe(
        Math.round(vcpu * 10_000),
      );
    }
  });

  it('converts zero resources to zero capacity', () => {
    expect(toResourceVector({ vcpu: 0, memoryMb: 0 }, HAPROXY_CAPACITY_FACTORS)).toEqual({
      connections: 0,
      requestsPerSecond: 0,
    });
  });

  it('uses the factors it is given, so operators can tune them per proxy kind', () => {
    const factors = { connectionsPerGb: 2048, requestsPerSecondPerVcpu: 500 };
    expect(toResourceVector({ vcpu: 4, memoryMb: 512 }, factors)).toEqual({
      connections: 1024,
      requestsPerSecond: 2000,
    });
    expect(Object.keys(DEFAULT_CAPACITY_MODEL).sort()).toEqual(['haproxy', 'nginx']);
  });

  it('rejects factors that are negative or not finite, naming the factor', () => {
    expect(() => assertCapacityFactors({ connectionsPerGb: -1, requestsPerSecondPerVcpu: 1 })).toThrow(
      /connectionsPerGb/,
    );
    expect(() => assertCapacityFactors({ connectionsPerGb: 1, requestsPerSecondPerVcpu: Number.NaN })).toThrow(
      /requestsPerSecondPerVcpu/,
    );
    expect(() => assertCapacityFactors(HAPROXY_CAPACITY_FACTORS)).not.toThrow();
  });

  it('property: reservations that fit a node in vCPU and MB still fit once converted, and more resources never convert to less', () => {
    assertProperty(
      fc.property(
        scenario((rng) => {
          const reservations = Array.from({ length: rng.int(1, 8) }, () => ({
            vcpu: rng.int(0, 4000) / 1000,
            memoryMb: rng.int(0, 8192),
          }));
          const factors = rng.chance(0.5)
            ? HAPROXY_CAPACITY_FACTORS
            : { connectionsPerGb: rng.int(1, 50_000), requestsPerSecondPerVcpu: rng.int(1, 50_000) };
          return { reservations, factors };
        }),
        ({ reservations, factors }) => {
          const milli = reservations.reduce((s, r) => s + Math.round(r.vcpu * 1000), 0);
          const node = { vcpu: milli / 1000, memoryMb: reservations.reduce((s, r) => s + r.memoryMb, 0) };
          const capacity = toResourceVector(node, factors);
          const converted = reservations.map((r) => toResourceVector(r, factors));
          expect(converted.reduce((s, v) => s + v.connections, 0)).toBeLessThanOrEqual(capacity.connections);
          expect(converted.reduce((s, v) => s + v.requestsPerSecond, 0)).toBeLessThanOrEqual(
            capacity.requestsPerSecond,
          );
          for (const [i, r] of reservations.entries()) {
            const more = toResourceVector({ vcpu: r.vcpu + 0.001, memoryMb: r.memoryMb + 1 }, factors);
            expect(more.connections).toBeGreaterThanOrEqual(converted[i]!.connections);
            expect(more.requestsPerSecond).toBeGreaterThanOrEqual(converted[i]!.requestsPerSecond);
          }
        },
      ),
      2000,
    );
  });
});
