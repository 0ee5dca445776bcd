// monitor_scale: being written.
#include <cstdio>
int main() {
  std::printf("monitor_scale: not written yet\n");
  return 1;
}
