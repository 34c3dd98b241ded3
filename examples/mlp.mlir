// A one-layer perceptron with a softmax head: the Quick start compiles it for vmvx and runs it
// on both local drivers. `hal compile --dump-ir=DIR` shows the matmul, bias add and relu fused
// into one dispatch, and the softmax in a second.
func.func @main(%x: tensor<2x4xf32>, %w: tensor<4x3xf32>, %b: tensor<3xf32>) -> tensor<2x3xf32> {
  %0 = matmul %x, %w : (tensor<2x4xf32>, tensor<4x3xf32>) -> tensor<2x3xf32>
  %1 = add %0, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %2 = relu %1 : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %3 = softmax %2 {axis = 1} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  return %3 : tensor<2x3xf32>
}
