// The kernel's own cost of benchbox's perf_event counters, without benchbox: fork a child that
// waits on a pipe, open the four software counters on it (inherit, enable_on_exec, as
// src/sandbox/counters.rs does), let it exec /bin/true, wait, read and close them.
// `mode`: 0 no counters, 1 four separate counters (what benchbox does), 2 one group (task-clock
// leading, PERF_FORMAT_GROUP: one read for all four). `keep` 1: first open one disabled
// counter of each of page faults, context switches and CPU migrations on this process and keep
// it (as benchbox does), so the kernel's switches for them stay on between iterations.
//
//   gcc -O2 -o /tmp/perf_event_cost benches/perf_event_cost.c
//   for m in "0 0" "1 0" "1 1" "2 0" "2 1"; do /tmp/perf_event_cost 2000 $m; done
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
  if(argc<3){fprintf(stderr,"usage: %s N MODE [KEEP]\n",argv[0]);return 2;}
  int n=atoi(argv[1]), mode=atoi(argv[2]), keep=argc>3&&atoi(argv[3]);
  unsigned long long cfg[4]={PERF_COUNT_SW_TASK_CLOCK,PERF_COUNT_SW_PAGE_FAULTS,PERF_COUNT_SW_CONTEXT_SWITCHES,PERF_COUNT_SW_CPU_MIGRATIONS};
  if(keep) for(int k=1;k<4;k++){struct perf_event_attr at; memset(&at,0,sizeof at); at.type=PERF_TYPE_SOFTWARE; at.size=64; at.config=cfg[k]; at.disabled=1;
    if(syscall(SYS_perf_event_open,&at,0,-1,-1,PERF_FLAG_FD_CLOEXEC)<0){perror("keep");return 1;}}
  double t0=now(), topen=0, tread=0, tclose=0;
  for(int i=0;i<n;i++){
    int p[2]; pipe(p);
    pid_t c=fork();
    if(!c){char b; close(p[1]); read(p[0],&b,1); execl("/bin/true","true",NULL); _exit(127);}
    close(p[0]);
    int fds[4];
    double a=now();
    if(mode) for(int k=0;k<4;k++){struct perf_event_attr at; memset(&at,0,sizeof at); at.type=PERF_TYPE_SOFTWARE; at.size=64; at.config=cfg[k];
      at.read_format=PERF_FORMAT_TOTAL_TIME_ENABLED|PERF_FORMAT_TOTAL_TIME_RUNNING; at.inherit=1;
      // In a group only the leader is disabled until the exec; the members follow it.
      if(mode==1||k==0){at.disabled=1; at.enable_on_exec=1;}
      if(mode==2&&k==0) at.read_format|=PERF_FORMAT_GROUP;
      fds[k]=syscall(SYS_perf_event_open,&at,c,-1,mode==2&&k>0?fds[0]:-1,PERF_FLAG_FD_CLOEXEC); if(fds[k]<0){perror("open");return 1;}}
    topen+=now()-a;
    write(p[1],"g",1); close(p[1]);
    int st; waitpid(c,&st,0);
    a=now();
    unsigned long long v[16];
    if(mode==1) for(int k=0;k<4;k++) if(read(fds[k],v,24)!=24){perror("read");return 1;}
    if(mode==2) if(read(fds[0],v,sizeof v)<0){perror("read");return 1;}
    double b=now(); tread+=b-a;
    if(mode) for(int k=0;k<4;k++) close(fds[k]);
    tclose+=now()-b;
  }
  double t=now()-t0;
  printf("mode=%d keep=%d per iteration %.1f us (open %.1f, read %.1f, close %.1f)\n",mode,keep,t/n*1e6,topen/n*1e6,tread/n*1e6,tclose/n*1e6);
}
