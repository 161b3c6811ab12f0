// Command fakefrontend is a stand-in for Temporal's frontend, for benchmarks only.
//
// It answers the WorkflowService calls a client that starts, signals, updates
// and cancels workflows makes (system info and namespace at connect; start,
// signal, signal-with-start, update, update-with-start, cancel) at once with
// valid responses, and counts them, so whatever sends to it is the bottleneck,
// never it. Nothing is stored: a start always starts, an update always
// completes with a null result. The counts are served as JSON on
// http://<http>/counts (GET; DELETE answers them and starts again from zero).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	namespacepb "go.temporal.io/api/namespace/v1"
	updatepb "go.temporal.io/api/update/v1"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"
)

// counts is one counter per method, created on first use.
type counts struct {
	mu      sync.Mutex
	byName  map[string]*atomic.Int64
	started atomic.Int64 // workflows started, by any call that starts one
}

func (c *counts) add(name string) {
	c.mu.Lock()
	counter, ok := c.byName[name]
	if !ok {
		counter = new(atomic.Int64)
		c.byName[name] = counter
	}
	c.mu.Unlock()
	counter.Add(1)
}

func (c *counts) snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.byName)+1)
	for name, counter := range c.byName {
		out[name] = counter.Load()
	}
	out["WorkflowsStarted"] = c.started.Load()
	return out
}

// reset returns the counts and starts again from zero.
func (c *counts) reset() map[string]int64 {
	out := c.snapshot()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.byName = map[string]*atomic.Int64{}
	c.started.Store(0)
	return out
}

type frontend struct {
	workflowservice.UnimplementedWorkflowServiceServer
	counts *counts
	prefix string       // makes run ids unique across restarts
	runs   atomic.Int64 // makes them unique within one
}

// runID is shaped like the UUIDs the real server gives, without the cost of a random one.
func (f *frontend) runID() string {
	n := f.runs.Add(1)
	return fmt.Sprintf("%s-0000-4000-8000-%012x", f.prefix, n)
}

func (f *frontend) GetSystemInfo(context.Context, *workflowservice.GetSystemInfoRequest) (*workflowservice.GetSystemInfoResponse, error) {
	f.counts.add("GetSystemInfo")
	return &workflowservice.GetSystemInfoResponse{
		ServerVersion: "1.29.0-fakefrontend",
		Capabilities: &workflowservice.GetSystemInfoResponse_Capabilities{
			SignalAndQueryHeader:            true,
			InternalErrorDifferentiation:    true,
			ActivityFailureIncludeHeartbeat: true,
			SupportsSchedules:               true,
			EncodedFailureAttributes:        true,
			UpsertMemo:                      true,
			EagerWorkflowStart:              true,
			SdkMetadata:                     true,
			CountGroupByExecutionStatus:     true,
		},
	}, nil
}

func (f *frontend) DescribeNamespace(_ context.Context, req *workflowservice.DescribeNamespaceRequest) (*workflowservice.DescribeNamespaceResponse, error) {
	f.counts.add("DescribeNamespace")
	return &workflowservice.DescribeNamespaceResponse{
		NamespaceInfo: &namespacepb.NamespaceInfo{
			Name: req.GetNamespace(), Id: "00000000-0000-4000-8000-000000000000",
			State: enumspb.NAMESPACE_STATE_REGISTERED,
		},
		Config: &namespacepb.NamespaceConfig{WorkflowExecutionRetentionTtl: durationpb.New(24 * time.Hour)},
	}, nil
}

func (f *frontend) start() *workflowservice.StartWorkflowExecutionResponse {
	f.counts.started.Add(1)
	return &workflowservice.StartWorkflowExecutionResponse{RunId: f.runID(), Started: true}
}

func (f *frontend) StartWorkflowExecution(context.Context, *workflowservice.StartWorkflowExecutionRequest) (*workflowservice.StartWorkflowExecutionResponse, error) {
	f.counts.add("StartWorkflowExecution")
	return f.start(), nil
}

func (f *frontend) SignalWorkflowExecution(context.Context, *workflowservice.SignalWorkflowExecutionRequest) (*workflowservice.SignalWorkflowExecutionResponse, error) {
	f.counts.add("SignalWorkflowExecution")
	return &workflowservice.SignalWorkflowExecutionResponse{}, nil
}

func (f *frontend) SignalWithStartWorkflowExecution(context.Context, *workflowservice.SignalWithStartWorkflowExecutionRequest) (*workflowservice.SignalWithStartWorkflowExecutionResponse, error) {
	f.counts.add("SignalWithStartWorkflowExecution")
	f.counts.started.Add(1)
	return &workflowservice.SignalWithStartWorkflowExecutionResponse{RunId: f.runID(), Started: true}, nil
}

// nullPayload is the JSON-less null every SDK's default converter decodes as None / nil.
var nullPayload = &commonpb.Payloads{Payloads: []*commonpb.Payload{{
	Metadata: map[string][]byte{"encoding": []byte("binary/null")},
}}}

func (f *frontend) update(req *workflowservice.UpdateWorkflowExecutionRequest, runID string) *workflowservice.UpdateWorkflowExecutionResponse {
	execution := &commonpb.WorkflowExecution{WorkflowId: req.GetWorkflowExecution().GetWorkflowId(), RunId: runID}
	if execution.RunId == "" {
		execution.RunId = req.GetWorkflowExecution().GetRunId()
	}
	return &workflowservice.UpdateWorkflowExecutionResponse{
		UpdateRef: &updatepb.UpdateRef{WorkflowExecution: execution, UpdateId: req.GetRequest().GetMeta().GetUpdateId()},
		Outcome:   &updatepb.Outcome{Value: &updatepb.Outcome_Success{Success: nullPayload}},
		Stage:     enumspb.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_COMPLETED,
	}
}

func (f *frontend) UpdateWorkflowExecution(_ context.Context, req *workflowservice.UpdateWorkflowExecutionRequest) (*workflowservice.UpdateWorkflowExecutionResponse, error) {
	f.counts.add("UpdateWorkflowExecution")
	return f.update(req, ""), nil
}

// ExecuteMultiOperation answers update-with-start: a start, then an update of what it started.
func (f *frontend) ExecuteMultiOperation(_ context.Context, req *workflowservice.ExecuteMultiOperationRequest) (*workflowservice.ExecuteMultiOperationResponse, error) {
	f.counts.add("ExecuteMultiOperation")
	out := &workflowservice.ExecuteMultiOperationResponse{}
	runID := ""
	for _, op := range req.GetOperations() {
		switch {
		case op.GetStartWorkflow() != nil:
			started := f.start()
			runID = started.RunId
			out.Responses = append(out.Responses, &workflowservice.ExecuteMultiOperationResponse_Response{
				Response: &workflowservice.ExecuteMultiOperationResponse_Response_StartWorkflow{StartWorkflow: started}})
		case op.GetUpdateWorkflow() != nil:
			out.Responses = append(out.Responses, &workflowservice.ExecuteMultiOperationResponse_Response{
				Response: &workflowservice.ExecuteMultiOperationResponse_Response_UpdateWorkflow{UpdateWorkflow: f.update(op.GetUpdateWorkflow(), runID)}})
		}
	}
	return out, nil
}

func (f *frontend) RequestCancelWorkflowExecution(context.Context, *workflowservice.RequestCancelWorkflowExecutionRequest) (*workflowservice.RequestCancelWorkflowExecutionResponse, error) {
	f.counts.add("RequestCancelWorkflowExecution")
	return &workflowservice.RequestCancelWorkflowExecutionResponse{}, nil
}

func main() {
	grpcAddress := flag.String("grpc", "127.0.0.1:7233", "where the WorkflowService listens")
	httpAddress := flag.String("http", "127.0.0.1:7243", "where /counts is served")
	flag.Parse()

	state := &counts{byName: map[string]*atomic.Int64{}}
	service := &frontend{counts: state, prefix: fmt.Sprintf("%08x", uint32(time.Now().UnixNano()))}

	listener, err := net.Listen("tcp", *grpcAddress)
	if err != nil {
		log.Fatalf("listen %s: %v", *grpcAddress, err)
	}
	server := grpc.NewServer()
	workflowservice.RegisterWorkflowServiceServer(server, service)

	http.HandleFunc("/counts", func(w http.ResponseWriter, r *http.Request) {
		answer := state.snapshot
		if r.Method == http.MethodDelete {
			answer = state.reset
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(answer())
	})
	go func() {
		if err := http.ListenAndServe(*httpAddress, nil); err != nil {
			log.Printf("http %s: %v", *httpAddress, err)
			os.Exit(1)
		}
	}()
	log.Printf("fakefrontend: gRPC on %s, counts on http://%s/counts", *grpcAddress, *httpAddress)
	if err := server.Serve(listener); err != nil {
		log.Fatal(err)
	}
}
