/* A static program that waits until it is killed: tests read its
 * /proc/PID/exe, and it runs even inside an empty chroot. */
#include <unistd.h>

int main(void)
{
	pause();
	return 0;
}
