/**
 * Event strings wardend puts in a container's `events` (DESIGN §5: info and link replies) and
 * the agent reads: the host side writes them, the agent turns them into an InstanceState
 * `reason` (DESIGN §3.3). Strings of the classic warden; never reword them.
 */
/** The container's memory cgroup hit its limit and the kernel killed a process. */
export const OUT_OF_MEMORY = 'out of memory';
/** A job wrote more than its output cap; the rest was dropped. */
export const OUTPUT_EXCEEDED = 'command exceeded maximum output';
