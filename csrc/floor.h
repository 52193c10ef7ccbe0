/* The floor program's contract: a single global, executions (its .bss), which
 * its loader reads; nothing is configured. */
#pragma once
