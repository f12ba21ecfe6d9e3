// jit_llvm.cpp: the "llvm" back end of nnc_jit.h, built as libnnc_jit_llvm.so and dlopen'ed by jit.c.
//
// One call compiles one C translation unit held in memory: the clang driver turns a cc-like command line
// into cc1 arguments (so include paths and defaults match the system clang), clang's EmitLLVMOnlyAction
// parses the remapped source into an unoptimized module, clang's own -O<n> new-pass-manager pipeline
// (EmitBackendOutput, exactly what `clang -O<n>` runs; no verifier, as the driver says) optimizes it, and
// a fresh ORC LLJIT per handle generates machine code for it, resolving libc, libm and OpenBLAS from the
// running process. The whole module is compiled and linked inside nnc_jit_llvm_compile, so a missing
// symbol is a compile error and lookups are cheap.
//
// One deliberate difference from `clang -O<n>`: a static function that contains a loop and is not
// declared `inline` is not inlined. Generated code is one static function per kernel, each called once;
// LLVM inlines them all into the entry point, and loop passes (IndVarSimplify, LoopUnroll, LSR) are
// superlinear in the loops of one function: a 3100-line model took 3.7 s instead of 1.7 s, and the gap
// grows with the model. Calling a kernel costs nothing next to its loops; a small loop helper that
// should be inlined says `static inline`.
//
// What it does not do: choose between back ends or load OpenBLAS (jit.c does both), cache anything
// between calls, or share one handle between threads. Messages for failures that are not the C
// source's fault start with NNC_JIT_LLVM_INTERNAL, so jit.c may retry with cc.
#include "nnc_jit.h"

#include <clang/Basic/Diagnostic.h>
#include <clang/Basic/DiagnosticOptions.h>
#include <clang/Basic/TargetInfo.h>
#include <clang/CodeGen/BackendUtil.h>
#include <clang/CodeGen/CodeGenAction.h>
#include <clang/Frontend/CompilerInstance.h>
#include <clang/Frontend/CompilerInvocation.h>
#include <clang/Frontend/TextDiagnosticPrinter.h>
#include <clang/Frontend/Utils.h>
#include <clang/Lex/PreprocessorOptions.h>
#include <llvm/Analysis/CFG.h>
#include <llvm/ExecutionEngine/Orc/ExecutionUtils.h>
#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/Support/Host.h>
#include <llvm/Support/MemoryBuffer.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <unistd.h>

#ifndef NNC_CLANG_RESOURCE_DIR
#error "NNC_CLANG_RESOURCE_DIR (clang's builtin headers, e.g. /usr/lib/llvm-14/lib/clang/14.0.6) must be defined"
#endif
#ifndef NNC_CLANG_EXECUTABLE
#define NNC_CLANG_EXECUTABLE "clang" // only used by the driver to find a GCC installation
#endif

#define NNC_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

const int kErrLines = 20; // diagnostics kept in err, as the cc back end

// Non-default places of cblas.h, as in jit.c; Debian's /usr/include/<multiarch> needs no -I.
const char *const kCblasDirs[] = {"/usr/include/openblas", "/usr/local/include/openblas",
                                  "/opt/OpenBLAS/include"};

struct Handle {
    std::string reported; // errors the ExecutionSession reports instead of returning; declared first
                          // because the LLJIT's destructor may still report
    std::unique_ptr<llvm::orc::LLJIT> jit;
};

struct Failure {
    std::string msg;
    bool internal;
};

void init_llvm_once()
{
    static std::once_flag once;
    std::call_once(once, [] {
        llvm::InitializeNativeTarget();
        llvm::InitializeNativeTargetAsmPrinter();
        llvm::InitializeNativeTargetAsmParser();
    });
}

// Copies the first kErrLines lines of msg into err, without the final newline.
void put_err(char *err, size_t errlen, const std::string &msg)
{
    if (!err || errlen == 0)
        return;
    size_t n = 0;
    for (int lines = 0; n < msg.size() && lines < kErrLines; n++)
        lines += msg[n] == '\n';
    while (n > 0 && msg[n - 1] == '\n')
        n--;
    n = std::min(n, errlen - 1);
    std::memcpy(err, msg.data(), n);
    err[n] = '\0';
}

Failure internal(const std::string &what) { return Failure{NNC_JIT_LLVM_INTERNAL + what, true}; }

const char *resource_dir()
{
    const char *env = std::getenv("NNC_CLANG_RESOURCE_DIR");
    return env && *env ? env : NNC_CLANG_RESOURCE_DIR;
}

const char *cblas_include_dir()
{
    for (const char *dir : kCblasDirs)
        if (access((std::string(dir) + "/cblas.h").c_str(), R_OK) == 0)
            return dir;
    return nullptr;
}

// The command line the cc back end would run, in clang's driver syntax.
std::vector<std::string> driver_args(const char *name, const nnc_jit_options &o)
{
    std::vector<std::string> a = {NNC_CLANG_EXECUTABLE, "-std=c99", "-O" + std::to_string(o.opt_level),
                                  "-ffp-contract=on", "-fno-math-errno", "-fno-color-diagnostics",
                                  "-Werror=implicit-function-declaration",
                                  std::string("-resource-dir=") + resource_dir()};
    if (o.native)
        a.push_back("-march=native");
    for (const char *const *d = o.defines; d && *d; d++)
        a.push_back(std::string("-D") + *d);
    if (o.link_blas && cblas_include_dir())
        a.push_back(std::string("-I") + cblas_include_dir());
    a.insert(a.end(), {"-x", "c", name});
    return a;
}

// Diagnostics in clang's usual text form (file:line:col: error: ..., the line, a caret) into a string.
// Locations are the presumed ones, as clang's command line has it: generated code maps its lines back
// to the model with #line, and an error must point at the model.
struct DiagSink {
    std::string text;
    llvm::raw_string_ostream os{text};
    llvm::IntrusiveRefCntPtr<clang::DiagnosticOptions> opts{new_options()};
    clang::TextDiagnosticPrinter printer{os, opts.get()};

    std::string str() { return os.str(); }
    static clang::DiagnosticOptions *new_options()
    {
        clang::DiagnosticOptions *o = new clang::DiagnosticOptions;
        o->ShowPresumedLoc = true;
        o->ShowColors = false;
        return o;
    }
};

std::unique_ptr<clang::CompilerInvocation> make_invocation(const char *name, const nnc_jit_options &o,
                                                           DiagSink &sink)
{
    std::vector<std::string> args = driver_args(name, o);
    std::vector<const char *> argv;
    for (const std::string &s : args)
        argv.push_back(s.c_str());
    llvm::IntrusiveRefCntPtr<clang::DiagnosticsEngine> diags(new clang::DiagnosticsEngine(
        new clang::DiagnosticIDs, sink.opts.get(), &sink.printer, /*ShouldOwnClient=*/false));
    std::unique_ptr<clang::CompilerInvocation> inv = clang::createInvocationFromCommandLine(argv, diags);
    if (inv) { // -disable-free: the driver assumes a process that exits right after
        inv->getFrontendOpts().DisableFree = false;
        inv->getCodeGenOpts().DisableFree = false; // else clang buries each TargetMachine
    }
    return inv;
}

// Static, loop-containing, not `inline`: noinline (see the top of the file for why).
void keep_kernels_apart(llvm::Module &m)
{
    llvm::SmallVector<std::pair<const llvm::BasicBlock *, const llvm::BasicBlock *>, 8> backedges;
    for (llvm::Function &f : m) {
        if (f.isDeclaration() || !f.hasLocalLinkage() || f.hasFnAttribute(llvm::Attribute::AlwaysInline) ||
            f.hasFnAttribute(llvm::Attribute::InlineHint))
            continue;
        backedges.clear();
        llvm::FindFunctionBackedges(f, backedges);
        if (!backedges.empty())
            f.addFnAttr(llvm::Attribute::NoInline);
    }
}

// clang's -O<n> pipeline for the module, as EmitLLVMOnlyAction would have run it.
void optimize(clang::CompilerInstance &ci, llvm::Module &m)
{
    clang::CodeGenOptions &cg = ci.getCodeGenOpts();
    cg.DisableLLVMPasses = false;
    clang::EmitBackendOutput(ci.getDiagnostics(), ci.getHeaderSearchOpts(), cg, ci.getTargetOpts(),
                             ci.getLangOpts(), ci.getTarget().getDataLayoutString(), &m,
                             clang::Backend_EmitNothing, nullptr);
}

// C source -> optimized llvm::Module in ctx, or a Failure (C diagnostics are not internal).
std::unique_ptr<llvm::Module> compile_to_ir(const char *source, const char *name, const nnc_jit_options &o,
                                            llvm::LLVMContext &ctx, Failure &fail)
{
    std::string stddef = std::string(resource_dir()) + "/include/stddef.h";
    if (access(stddef.c_str(), R_OK) != 0) {
        fail = internal(std::string("clang's resource directory has no ") + stddef +
                        " (set NNC_CLANG_RESOURCE_DIR)");
        return nullptr;
    }
    DiagSink sink;
    std::unique_ptr<clang::CompilerInvocation> inv = make_invocation(name, o, sink);
    if (!inv) {
        fail = internal("the clang driver rejected the command line: " + sink.str());
        return nullptr;
    }
    // The PreprocessorOptions take ownership of the buffer.
    inv->getPreprocessorOpts().addRemappedFile(name,
                                               llvm::MemoryBuffer::getMemBufferCopy(source, name).release());
    inv->getCodeGenOpts().DisableLLVMPasses = true; // optimize() runs them after keep_kernels_apart()
    clang::CompilerInstance ci;
    ci.setInvocation(std::move(inv));
    ci.createDiagnostics(&sink.printer, /*ShouldOwnClient=*/false);
    ci.setVerboseOutputStream(sink.os); // "N errors generated." would go to stderr
    clang::EmitLLVMOnlyAction act(&ctx);
    if (!ci.ExecuteAction(act) || ci.getDiagnostics().hasErrorOccurred()) {
        fail = Failure{sink.str(), false};
        if (fail.msg.empty())
            fail = internal("clang failed without a diagnostic");
        return nullptr;
    }
    std::unique_ptr<llvm::Module> m = act.takeModule();
    if (!m) {
        fail = internal("clang produced no module");
        return nullptr;
    }
    if (o.opt_level > 0)
        keep_kernels_apart(*m);
    optimize(ci, *m);
    if (ci.getDiagnostics().hasErrorOccurred()) {
        fail = internal("the optimizer failed: " + sink.str());
        return nullptr;
    }
    return m;
}

llvm::CodeGenOpt::Level codegen_level(int opt_level)
{
    switch (opt_level) {
    case 0: return llvm::CodeGenOpt::None;
    case 1: return llvm::CodeGenOpt::Less;
    case 3: return llvm::CodeGenOpt::Aggressive;
    default: return llvm::CodeGenOpt::Default;
    }
}

// The target the module's functions already name (clang wrote target-cpu/-features into each one);
// the defaults of the TargetMachine only matter for code outside functions.
llvm::Expected<llvm::orc::JITTargetMachineBuilder> target_builder(const nnc_jit_options &o)
{
    if (o.native)
        return llvm::orc::JITTargetMachineBuilder::detectHost();
    return llvm::orc::JITTargetMachineBuilder(llvm::Triple(llvm::sys::getProcessTriple()));
}

// A new LLJIT whose main JITDylib falls back to the process (libc, OpenBLAS loaded RTLD_GLOBAL) and libm.
// It keeps the default RuntimeDyld linker and large code model: the JIT's sections and the process's
// libraries may be more than 2 GiB apart.
llvm::Expected<std::unique_ptr<llvm::orc::LLJIT>> make_jit(const nnc_jit_options &o, Handle &h)
{
    llvm::Expected<llvm::orc::JITTargetMachineBuilder> jtmb = target_builder(o);
    if (!jtmb)
        return jtmb.takeError();
    jtmb->setCodeGenOptLevel(codegen_level(o.opt_level));
    auto jit = llvm::orc::LLJITBuilder().setJITTargetMachineBuilder(std::move(*jtmb)).create();
    if (!jit)
        return jit.takeError();
    (*jit)->getExecutionSession().setErrorReporter(
        [&h](llvm::Error e) { h.reported += llvm::toString(std::move(e)) + "\n"; });
    char prefix = (*jit)->getDataLayout().getGlobalPrefix();
    auto process = llvm::orc::DynamicLibrarySearchGenerator::GetForCurrentProcess(prefix);
    if (!process)
        return process.takeError();
    (*jit)->getMainJITDylib().addGenerator(std::move(*process));
    // The host may not link libm itself; then its functions are not in the global scope.
    if (auto libm = llvm::orc::DynamicLibrarySearchGenerator::Load("libm.so.6", prefix))
        (*jit)->getMainJITDylib().addGenerator(std::move(*libm));
    else
        llvm::consumeError(libm.takeError());
    return jit;
}

// A symbol the module defines and exports; looking it up compiles and links the whole module.
std::string first_definition(const llvm::Module &m)
{
    for (const llvm::Function &f : m)
        if (!f.isDeclaration() && f.hasExternalLinkage())
            return f.getName().str();
    for (const llvm::GlobalVariable &g : m.globals())
        if (!g.isDeclaration() && g.hasExternalLinkage())
            return g.getName().str();
    return "";
}

// Module -> machine code in a new handle's LLJIT, linked now.
Handle *jit_module(std::unique_ptr<llvm::Module> m, std::unique_ptr<llvm::LLVMContext> ctx,
                   const nnc_jit_options &o, Failure &fail)
{
    std::unique_ptr<Handle> h(new Handle);
    auto jit = make_jit(o, *h);
    if (!jit) {
        fail = internal("cannot create the JIT: " + llvm::toString(jit.takeError()));
        return nullptr;
    }
    h->jit = std::move(*jit);
    std::string first = first_definition(*m);
    if (llvm::Error e = h->jit->addIRModule(llvm::orc::ThreadSafeModule(std::move(m), std::move(ctx)))) {
        fail = internal("cannot add the module: " + llvm::toString(std::move(e)));
        return nullptr;
    }
    if (first.empty())
        return h.release();
    auto sym = h->jit->lookup(first);
    if (!sym) {
        fail = internal("cannot link the compiled code: " + llvm::toString(sym.takeError()) + "\n" +
                        h->reported);
        return nullptr;
    }
    return h.release();
}

void *compile(const char *source, const char *name, const nnc_jit_options &o, Failure &fail)
{
    init_llvm_once();
    auto ctx = std::make_unique<llvm::LLVMContext>();
    std::unique_ptr<llvm::Module> m = compile_to_ir(source, name, o, *ctx, fail);
    if (!m)
        return nullptr;
    return jit_module(std::move(m), std::move(ctx), o, fail);
}

} // namespace

NNC_EXPORT void *nnc_jit_llvm_compile(const char *source, const char *name, const nnc_jit_options *opt,
                                      char *err, size_t errlen)
{
    nnc_jit_options o = {2, 0, 0, nullptr, nullptr};
    if (opt)
        o = *opt;
    o.opt_level = std::max(0, std::min(3, o.opt_level));
    if (!name || !*name)
        name = "nnc_jit.c";
    Failure fail{"", false};
    void *h = nullptr;
    try {
        if (source)
            h = compile(source, name, o, fail);
        else
            fail = internal("no source");
    } catch (const std::exception &e) {
        fail = internal(std::string("exception: ") + e.what());
    } catch (...) {
        fail = internal("unknown exception");
    }
    if (!h)
        put_err(err, errlen, fail.msg);
    return h;
}

NNC_EXPORT void *nnc_jit_llvm_lookup(void *handle, const char *symbol)
{
    if (!handle || !symbol)
        return nullptr;
    auto sym = static_cast<Handle *>(handle)->jit->lookup(symbol);
    if (!sym) {
        llvm::consumeError(sym.takeError());
        return nullptr;
    }
    return reinterpret_cast<void *>(static_cast<uintptr_t>(sym->getAddress()));
}

NNC_EXPORT void nnc_jit_llvm_free(void *handle) { delete static_cast<Handle *>(handle); }
