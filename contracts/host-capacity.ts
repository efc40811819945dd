/**
 * A container host's free capacity as the agent publishes it on ECS (DESIGN §11) and
 * `dropwarden hosts` reads it back (DESIGN §6): custom attributes of the host's container instance.
 */
export interface FreeCapacity {
  memoryMb: number;
  diskMb: number;
  instances: number;
}

/** ECS custom attribute names (1-128 of [A-Za-z0-9_./\\-]); values are decimal integers. Add names, never rename. */
export const CAPACITY_ATTRIBUTES = {
  memoryMb: 'dropwarden.free_memory_mb',
  diskMb: 'dropwarden.free_disk_mb',
  instances: 'dropwarden.instances',
} as const satisfies Record<keyof FreeCapacity, string>;
