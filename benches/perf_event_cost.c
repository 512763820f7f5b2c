// The kernel's own cost of benchbox's perf_event counters, without benchbox: fork a child that
// waits on a pipe, open the four software counters on it (inherit, enable_on_exec, as
// src/sandbox/counters.rs does), let it exec /bin/true, wait, read and close them. `on` 0 or 1.
//
//   gcc -O2 -o /tmp/perf_event_cost benches/perf_event_cost.c && /tmp/perf_event_cost 2000 0 && /tmp/perf_event_cost 2000 1
#define _GNU_SOURCE
#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){
  int n=atoi(argv[1]), on=atoi(argv[2]);
  unsigned long long cfg[4]={PERF_COUNT_SW_TASK_CLOCK,PERF_COUNT_SW_PAGE_FAULTS,PERF_COUNT_SW_CONTEXT_SWITCHES,PERF_COUNT_SW_CPU_MIGRATIONS};
  double t0=now(), topen=0, tclose=0;
  for(int i=0;i<n;i++){
    int p[2]; pipe(p);
    pid_t c=fork();
    if(!c){char b; close(p[1]); read(p[0],&b,1); execl("/bin/true","true",NULL); _exit(127);}
    close(p[0]);
    int fds[4];
    double a=now();
    if(on) for(int k=0;k<4;k++){struct perf_event_attr at; memset(&at,0,sizeof at); at.type=PERF_TYPE_SOFTWARE; at.size=64; at.config=cfg[k];
      at.read_format=PERF_FORMAT_TOTAL_TIME_ENABLED|PERF_FORMAT_TOTAL_TIME_RUNNING; at.disabled=1; at.inherit=1; at.enable_on_exec=1;
      fds[k]=syscall(SYS_perf_event_open,&at,c,-1,-1,PERF_FLAG_FD_CLOEXEC); if(fds[k]<0){perror("open");return 1;}}
    topen+=now()-a;
    write(p[1],"g",1); close(p[1]);
    int st; waitpid(c,&st,0);
    a=now();
    if(on) for(int k=0;k<4;k++){unsigned long long v[3]; read(fds[k],v,24); close(fds[k]);}
    tclose+=now()-a;
  }
  double t=now()-t0;
  printf("on=%d per iteration %.1f us (open %.1f, read+close %.1f)\n",on,t/n*1e6,topen/n*1e6,tclose/n*1e6);
}
